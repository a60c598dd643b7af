// Backstage's CatalogClient against an Atrium that requires credentials (no guest mode), given API
// tokens the way Backstage code passes them: per request (`{ token }`, as backend plugins do) or by a
// FetchApi that adds the Authorization header (as the Backstage frontend does).
//
// Run by server/tests/catalog_client.rs with ATRIUM_URL, ATRIUM_READ_TOKEN (catalog:read) and
// ATRIUM_WRITE_TOKEN (catalog:write). Skipped when those are not set (the main suite's run, which
// serves in guest mode).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CatalogClient } from '@backstage/catalog-client';
import { ResponseError } from '@backstage/errors';

const ATRIUM_URL = (process.env.ATRIUM_URL ?? '').replace(/\/+$/, '');
const READ = process.env.ATRIUM_READ_TOKEN;
const WRITE = process.env.ATRIUM_WRITE_TOKEN;
const skip = !READ || !WRITE ? 'needs ATRIUM_READ_TOKEN and ATRIUM_WRITE_TOKEN' : false;
const discoveryApi = { getBaseUrl: async () => `${ATRIUM_URL}/api/catalog` };

async function rejectsWith(promise, status, name) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof ResponseError, `a ResponseError, not ${error}`);
    assert.equal(error.response.status, status);
    assert.equal(error.body.error.name, name);
    return true;
  });
}

describe('CatalogClient with API tokens', { skip }, () => {
  const client = new CatalogClient({ discoveryApi });

  test('without a token every call is refused with 401', async () => {
    await rejectsWith(client.getEntities({ filter: { kind: 'component' } }), 401, 'AuthenticationError');
    await rejectsWith(client.getLocations(), 401, 'AuthenticationError');
  });

  test('a read token reads, per request as backend plugins pass it', async () => {
    const { items } = await client.getEntities({ filter: { kind: 'component' } }, { token: READ });
    assert.ok(items.length > 0);
    const page = await client.queryEntities({ filter: { kind: 'component' }, limit: 2 }, { token: READ });
    assert.ok(page.totalItems >= items.length);
    const facets = await client.getEntityFacets({ facets: ['kind'] }, { token: READ });
    assert.ok(facets.facets.kind.length > 0);
  });

  test('a read token cannot write: 403 NotAllowedError', async () => {
    await rejectsWith(
      client.addLocation({ type: 'url', target: 'https://example.com/catalog-info.yaml' }, { token: READ }),
      403,
      'NotAllowedError',
    );
  });

  test('a write token may register (dry run) and a revoked or made-up token is refused', async () => {
    const target = `${process.env.ATRIUM_FIXTURES_DIR}/extra.yaml`;
    const dry = await client.addLocation({ type: 'file', target, dryRun: true }, { token: WRITE });
    assert.ok(dry.entities.length > 0, 'the dry run reads the file');
    await rejectsWith(client.getEntities({}, { token: 'atr_notarealtoken' }), 401, 'AuthenticationError');
  });

  test('a FetchApi that adds the token, as the Backstage frontend wires it', async () => {
    const frontend = new CatalogClient({
      discoveryApi,
      fetchApi: {
        fetch: (input, init = {}) =>
          globalThis.fetch(input, {
            ...init,
            headers: { ...(init.headers ?? {}), Authorization: `Bearer ${READ}` },
          }),
      },
    });
    const { items } = await frontend.getEntities({ filter: { kind: 'component' }, fields: ['metadata.name'] });
    assert.ok(items.every((e) => typeof e.metadata.name === 'string'));
  });
});
