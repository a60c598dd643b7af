// Wire-compatibility suite: Backstage's own @backstage/catalog-client against a
// running Atrium. Nothing here talks HTTP by hand except where the client has
// no method for an endpoint (GET /entities/by-uid/{uid}); everything else goes
// through the client's public methods, so a pass means Backstage clients work
// against Atrium unchanged. The oracle is Backstage's documented behaviour (its
// catalog OpenAPI spec, the client's types and docs, and the catalog backend's
// observable responses). The whole suite passes against the real Backstage
// catalog backend (@backstage/plugin-catalog-backend 4.0.0) given a small
// stand-in for the only two things here that are Atrium's and not Backstage's:
//   - the `Model` kind (atrium.dev/v1alpha1), with ownedBy/ownerOf relations
//     from spec.owner;
//   - `$text: ./relative-file` placeholders inside a `file` location
//     (Backstage's PlaceholderProcessor only resolves URLs, so stock Backstage
//     rejects fixtures/apis.yaml's petstore API).
//
// CONTRACT WITH THE RUST HARNESS
// ------------------------------
// Before running `node --test` in tests/catalog-client/, the harness:
//   1. starts Atrium on a fresh, empty database, with the demo catalog NOT
//      loaded and no locations other than the one below, with `file`
//      locations allowed under the fixtures directory, and with no auth
//      required on /api/catalog (the suite sends no token);
//   2. registers ONE location: type `file`, target exactly
//      `${ATRIUM_FIXTURES_DIR}/catalog.yaml` (the string as written, which is
//      also what the suite expects back in `location.target`);
//   3. waits until every fixture entity (15 from the files plus the
//      generated Location entity of that registration, 16 in all) is
//      ingested AND stitched (relations present);
//   4. runs `node --test` with these environment variables:
//        ATRIUM_URL           base URL of the server, e.g. http://127.0.0.1:41234
//                             (no trailing slash; the catalog is at
//                             ${ATRIUM_URL}/api/catalog)
//        ATRIUM_FIXTURES_DIR  absolute, normalised path of tests/catalog-client/fixtures
//                             (no trailing slash)
//      and optionally
//        ATRIUM_POLL_TIMEOUT_MS  how long a poll waits for asynchronous
//                             ingestion before failing (default 30000).
//
// The client is built as Backstage documents it:
//   new CatalogClient({ discoveryApi: { getBaseUrl: async () => `${ATRIUM_URL}/api/catalog` } })
// With no fetchApi the client uses its default fetch (cross-fetch, which is
// node-fetch 2 under Node, as in a Backstage backend plugin); one test also
// drives a client given Node's global fetch as fetchApi (as the Backstage
// frontend does with its FetchApi).
//
// Read-only tests run first and assume the catalog holds exactly the fixture.
// Tests that mutate the catalog (addLocation, removeEntityByUid,
// removeLocationById) are in the last `describe`, run one at a time, only
// touch fixtures/extra.yaml's entity and location, and put the catalog back
// as they found it. No fixed sleeps: asynchronous effects are polled with a
// deadline.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CATALOG_FILTER_EXISTS, CatalogClient } from '@backstage/catalog-client';
import { stringifyEntityRef } from '@backstage/catalog-model';
import { ResponseError } from '@backstage/errors';
import YAML from 'yaml';

// ---------------------------------------------------------------------------
// Environment

const ATRIUM_URL = (process.env.ATRIUM_URL ?? '').replace(/\/+$/, '');
if (!ATRIUM_URL) {
  throw new Error(
    'ATRIUM_URL is not set: run this suite through the Rust harness, or set ATRIUM_URL ' +
      '(e.g. http://127.0.0.1:7007) to a running Atrium that registered fixtures/catalog.yaml',
  );
}
const FIXTURES_DIR = path.resolve(
  process.env.ATRIUM_FIXTURES_DIR ??
    path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures'),
);
const POLL_TIMEOUT_MS = Number(process.env.ATRIUM_POLL_TIMEOUT_MS ?? 30_000);
const POLL_INTERVAL_MS = 200;
const CATALOG_BASE_URL = `${ATRIUM_URL}/api/catalog`;

const client = new CatalogClient({
  discoveryApi: { getBaseUrl: async () => CATALOG_BASE_URL },
});

// ---------------------------------------------------------------------------
// What the fixture contains (kept in step with fixtures/*.yaml; the offline
// fixtures.test.mjs checks the files' shape)

const ROOT_TARGET = `${FIXTURES_DIR}/catalog.yaml`;
const EXTRA_TARGET = `${FIXTURES_DIR}/extra.yaml`;

// Backstage names the Location entity of a registered location
// `generated-<sha1 hex of "<type>:<target>">`, in the default namespace.
const generatedLocationRef = (type, target) =>
  `location:default/generated-${createHash('sha1').update(`${type}:${target}`).digest('hex')}`;

const ROOT_LOCATION_REF = generatedLocationRef('file', ROOT_TARGET);
const EXTRA_LOCATION_REF = generatedLocationRef('file', EXTRA_TARGET);
const FIXTURE_LOCATION_REF = 'location:default/atrium-fixtures';

const FIXTURE_REFS = [
  ROOT_LOCATION_REF,
  FIXTURE_LOCATION_REF,
  'group:default/engineering',
  'group:default/platform-team',
  'user:default/alice',
  'user:default/bob',
  'user:default/carol',
  'system:default/payments',
  'component:default/payments-api',
  'component:default/payments-web',
  'component:default/ledger-service',
  'component:default/fraud-detector',
  'resource:default/payments-db',
  'api:default/petstore',
  'api:default/ledger-grpc',
  'model:default/fraud-llm',
].sort();

const COMPONENTS_BY_NAME = ['fraud-detector', 'ledger-service', 'payments-api', 'payments-web'];

// ---------------------------------------------------------------------------
// Helpers

const refOf = entity => stringifyEntityRef(entity);
const refsOf = items => items.map(refOf).sort();
const namesOf = items => items.map(e => e.metadata.name).sort();
const relationsOf = entity =>
  (entity.relations ?? []).map(r => `${r.type} ${r.targetRef}`).sort();
const byValue = (a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0);

async function fixtureText(file) {
  return readFile(path.join(FIXTURES_DIR, file), 'utf8');
}

async function fixtureDocs(file) {
  return YAML.parseAllDocuments(await fixtureText(file))
    .map(d => d.toJSON())
    .filter(Boolean);
}

/**
 * Asserts that `promise` rejects with the client's ResponseError carrying the
 * given HTTP status and Backstage error name (`body.error.name`), in
 * Backstage's JSON error shape. Returns the error for further checks.
 */
async function expectResponseError(promise, status, errorName) {
  let caught;
  await assert.rejects(promise, err => {
    caught = err;
    return true;
  });
  assert.ok(
    caught instanceof ResponseError,
    `expected a ResponseError, got ${caught?.name}: ${caught?.message}`,
  );
  assert.equal(caught.name, 'ResponseError');
  assert.equal(caught.response.status, status, `HTTP status (${caught.message})`);
  assert.equal(caught.statusCode, status);
  assert.match(
    caught.response.headers.get('content-type') ?? '',
    /^application\/json/,
    'error responses are JSON',
  );
  assert.equal(typeof caught.body?.error?.message, 'string', 'body.error.message');
  assert.equal(caught.body.error.name, errorName, `body.error.name (${caught.body.error.message})`);
  assert.equal(caught.body.response?.statusCode, status, 'body.response.statusCode');
  assert.equal(caught.cause?.name, errorName, 'deserialised cause keeps the error name');
  return caught;
}

/**
 * Polls `probe` until it returns a truthy value, or fails after
 * POLL_TIMEOUT_MS with the last value/error. No fixed sleeps.
 */
async function waitFor(what, probe) {
  const deadline = Date.now() + POLL_TIMEOUT_MS;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? `${last.name}: ${last.message}` : JSON.stringify(last);
      assert.fail(`timed out after ${POLL_TIMEOUT_MS} ms waiting for ${what} (last: ${detail})`);
    }
    await new Promise(resolve => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

const POLLING_TEST = { timeout: POLL_TIMEOUT_MS + 15_000 };

test('the catalog API answers at ATRIUM_URL', async () => {
  // Fails first, with a plain message, when nothing is listening; every other
  // test then fails on its own with the same connection error.
  try {
    await client.getEntities({ filter: { kind: 'location' }, limit: 1 });
  } catch (err) {
    assert.fail(`Atrium's catalog API is not usable at ${CATALOG_BASE_URL}: ${err.message}`);
  }
});

// ---------------------------------------------------------------------------

describe('getEntities', () => {
  test('without a filter returns every fixture entity, Location entities included, once each', async () => {
    const { items } = await client.getEntities();
    assert.deepEqual(refsOf(items), FIXTURE_REFS);
    for (const entity of items) {
      const ref = refOf(entity);
      assert.equal(typeof entity.apiVersion, 'string', `${ref} apiVersion`);
      assert.equal(entity.metadata.namespace, 'default', `${ref} namespace defaults to "default"`);
      assert.match(entity.metadata.uid ?? '', /\S/, `${ref} has a uid`);
      assert.match(entity.metadata.etag ?? '', /\S/, `${ref} has an etag`);
      assert.ok(Array.isArray(entity.relations), `${ref} is stitched (relations array)`);
      assert.equal(
        entity.metadata.annotations?.['backstage.io/orphan'],
        undefined,
        `${ref} is not an orphan`,
      );
    }
    assert.equal(new Set(items.map(e => e.metadata.uid)).size, items.length, 'uids are unique');
  });

  test('filters by kind', async () => {
    const { items } = await client.getEntities({ filter: { kind: 'Component' } });
    assert.deepEqual(namesOf(items), COMPONENTS_BY_NAME);
    assert.ok(items.every(e => e.kind === 'Component'));

    const models = await client.getEntities({ filter: { kind: 'Model' } });
    assert.deepEqual(refsOf(models.items), ['model:default/fraud-llm']);
  });

  test('filter keys and values are case-insensitive', async () => {
    const lower = await client.getEntities({ filter: { kind: 'component', 'spec.type': 'website' } });
    const upper = await client.getEntities({ filter: { KIND: 'COMPONENT', 'Spec.Type': 'WebSite' } });
    assert.deepEqual(namesOf(lower.items), ['payments-web']);
    assert.deepEqual(namesOf(upper.items), ['payments-web']);

    const owned = await client.getEntities({
      filter: { Kind: 'Component', 'Relations.OwnedBy': 'Group:Default/Platform-Team' },
    });
    assert.deepEqual(namesOf(owned.items), ['payments-api', 'payments-web']);
  });

  test('conditions within one filter set are ANDed', async () => {
    const services = await client.getEntities({
      filter: { kind: 'component', 'spec.type': 'service' },
    });
    assert.deepEqual(namesOf(services.items), ['fraud-detector', 'ledger-service', 'payments-api']);

    const production = await client.getEntities({
      filter: { kind: 'component', 'spec.type': 'service', 'spec.lifecycle': 'production' },
    });
    assert.deepEqual(namesOf(production.items), ['ledger-service', 'payments-api']);
  });

  test('several values for one key are ORed', async () => {
    const { items } = await client.getEntities({ filter: { kind: ['API', 'Resource'] } });
    assert.deepEqual(refsOf(items), [
      'api:default/ledger-grpc',
      'api:default/petstore',
      'resource:default/payments-db',
    ]);
  });

  test('an array of filter sets is ORed', async () => {
    const { items } = await client.getEntities({
      filter: [{ kind: 'user' }, { kind: 'group', 'spec.type': 'team' }],
    });
    assert.deepEqual(refsOf(items), [
      'group:default/platform-team',
      'user:default/alice',
      'user:default/bob',
      'user:default/carol',
    ]);
  });

  test('array fields match any element (metadata.tags)', async () => {
    const java = await client.getEntities({ filter: { 'metadata.tags': 'java' } });
    assert.deepEqual(refsOf(java.items), [
      'component:default/ledger-service',
      'component:default/payments-api',
    ]);

    const javaUpper = await client.getEntities({ filter: { 'metadata.tags': 'JAVA' } });
    assert.deepEqual(refsOf(javaUpper.items), refsOf(java.items));

    // The documented `metadata.tags.<tag>` form, which lets one filter set
    // require two tags at once.
    const both = await client.getEntities({
      filter: {
        'metadata.tags.java': CATALOG_FILTER_EXISTS,
        'metadata.tags.payments': CATALOG_FILTER_EXISTS,
      },
    });
    assert.deepEqual(refsOf(both.items), ['component:default/payments-api']);

    const tagTrue = await client.getEntities({ filter: { 'metadata.tags.ml': 'true' } });
    assert.deepEqual(refsOf(tagTrue.items), ['component:default/fraud-detector']);
  });

  test('filters on relations (relations.ownedBy, relations.memberOf)', async () => {
    const owned = await client.getEntities({
      filter: { 'relations.ownedBy': 'group:default/engineering' },
    });
    assert.deepEqual(refsOf(owned.items), [
      'api:default/ledger-grpc',
      'component:default/ledger-service',
    ]);

    const ownedByUser = await client.getEntities({
      filter: { 'relations.ownedBy': 'user:default/carol' },
    });
    assert.deepEqual(refsOf(ownedByUser.items), ['component:default/fraud-detector']);

    const members = await client.getEntities({
      filter: { kind: 'user', 'relations.memberOf': 'group:default/platform-team' },
    });
    assert.deepEqual(namesOf(members.items), ['alice', 'bob']);
  });

  test('CATALOG_FILTER_EXISTS matches on the presence of a key', async () => {
    const children = await client.getEntities({
      filter: { kind: 'group', 'spec.parent': CATALOG_FILTER_EXISTS },
    });
    assert.deepEqual(refsOf(children.items), ['group:default/platform-team']);

    const providers = await client.getEntities({
      filter: { 'spec.providesApis': CATALOG_FILTER_EXISTS },
    });
    assert.deepEqual(namesOf(providers.items), ['ledger-service', 'payments-api']);

    const inSystem = await client.getEntities({
      filter: { kind: 'component', 'spec.system': CATALOG_FILTER_EXISTS },
    });
    assert.deepEqual(namesOf(inSystem.items), ['ledger-service', 'payments-api', 'payments-web']);
  });

  test('fields projection returns only the requested fields', async () => {
    const { items } = await client.getEntities({
      filter: { kind: 'system' },
      fields: ['kind', 'metadata.name', 'spec.owner'],
    });
    assert.deepEqual(items, [
      { kind: 'System', metadata: { name: 'payments' }, spec: { owner: 'platform-team' } },
    ]);

    // A subtree root keeps the whole subtree; absent fields are left out.
    const users = await client.getEntities({
      filter: { kind: 'user', 'metadata.name': 'alice' },
      fields: ['metadata.name', 'spec', 'metadata.doesNotExist'],
    });
    assert.deepEqual(users.items, [
      {
        metadata: { name: 'alice' },
        spec: {
          profile: { displayName: 'Alice Andersson', email: 'alice@example.com' },
          memberOf: ['platform-team'],
        },
      },
    ]);
  });

  test('order sorts ascending and descending', async () => {
    const asc = await client.getEntities({
      filter: { kind: 'component' },
      order: { field: 'metadata.name', order: 'asc' },
    });
    assert.deepEqual(
      asc.items.map(e => e.metadata.name),
      COMPONENTS_BY_NAME,
    );

    const desc = await client.getEntities({
      filter: { kind: 'component' },
      order: { field: 'metadata.name', order: 'desc' },
    });
    assert.deepEqual(
      desc.items.map(e => e.metadata.name),
      [...COMPONENTS_BY_NAME].reverse(),
    );
  });

  // The client documents that later order directives break ties and that
  // entities lacking an order field sort last. Current Backstage honours that
  // on the paginated path of GET /entities (offset/limit/after given), which
  // is what these two assertions use; without pagination it uses the first
  // directive only and leaves out entities lacking that field (asserted
  // after them).
  test('with pagination, later order directives break ties', async () => {
    const { items } = await client.getEntities({
      filter: { kind: 'component' },
      order: [
        { field: 'spec.type', order: 'desc' },
        { field: 'metadata.name', order: 'asc' },
      ],
      limit: 10,
    });
    assert.deepEqual(
      items.map(e => e.metadata.name),
      ['payments-web', 'fraud-detector', 'ledger-service', 'payments-api'],
    );
  });

  test('with pagination, entities without the order field sort last, whatever the direction', async () => {
    for (const order of ['asc', 'desc']) {
      const { items } = await client.getEntities({
        filter: { kind: 'component' },
        order: [
          { field: 'spec.system', order },
          { field: 'metadata.name', order: 'asc' },
        ],
        offset: 0,
        limit: 10,
      });
      assert.deepEqual(
        items.map(e => e.metadata.name),
        ['ledger-service', 'payments-api', 'payments-web', 'fraud-detector'],
        `order ${order}`,
      );
    }
  });

  test('without pagination, entities lacking the first order field are left out', async () => {
    const { items } = await client.getEntities({
      filter: { kind: 'component' },
      order: { field: 'spec.system', order: 'desc' },
    });
    // fraud-detector has no spec.system. (The others tie on it, broken by uid.)
    assert.deepEqual(namesOf(items), ['ledger-service', 'payments-api', 'payments-web']);
  });

  test('with pagination and no order, entities come in entity ref order', async () => {
    const { items } = await client.getEntities({ limit: 100 });
    assert.deepEqual(items.map(refOf), FIXTURE_REFS);

    const components = await client.getEntities({ filter: { kind: 'component' }, offset: 1, limit: 2 });
    assert.deepEqual(components.items.map(e => e.metadata.name), ['ledger-service', 'payments-api']);
  });

  test('the next-page Link is relative to the catalog router and leads to the next page', async () => {
    const first = await fetch(`${CATALOG_BASE_URL}/entities?filter=kind=component&limit=3&fields=metadata.name`);
    assert.equal(first.status, 200);
    assert.deepEqual(
      (await first.json()).map(e => e.metadata.name),
      ['fraud-detector', 'ledger-service', 'payments-api'],
    );
    const link = first.headers.get('link');
    const match = /^<(\/entities\?[^>]*)>; rel="next"$/.exec(link ?? '');
    assert.ok(match, `Link header: ${link}`);
    const next = await fetch(`${CATALOG_BASE_URL}${match[1]}`);
    assert.equal(next.status, 200);
    assert.deepEqual((await next.json()).map(e => e.metadata.name), ['payments-web']);
    assert.equal(next.headers.get('link'), null, 'no Link after the last page');
  });

  test('fields can name one annotation, whose key holds dots and a slash', async () => {
    const { items } = await client.getEntities({
      filter: { kind: 'component', 'metadata.name': 'payments-api' },
      fields: ['metadata.annotations.backstage.io/managed-by-location'],
    });
    assert.deepEqual(items, [
      {
        metadata: {
          annotations: { 'backstage.io/managed-by-location': `file:${FIXTURES_DIR}/services.yaml` },
        },
      },
    ]);
  });

  test('offset and limit page through an ordered result', async () => {
    const page = await client.getEntities({
      filter: { kind: 'component' },
      order: { field: 'metadata.name', order: 'asc' },
      offset: 1,
      limit: 2,
    });
    assert.deepEqual(
      page.items.map(e => e.metadata.name),
      ['ledger-service', 'payments-api'],
    );

    const first = await client.getEntities({
      filter: { kind: 'component' },
      order: { field: 'metadata.name', order: 'asc' },
      limit: 1,
    });
    assert.deepEqual(first.items.map(e => e.metadata.name), ['fraud-detector']);

    const pastTheEnd = await client.getEntities({
      filter: { kind: 'component' },
      order: { field: 'metadata.name', order: 'asc' },
      offset: 4,
      limit: 2,
    });
    assert.deepEqual(pastTheEnd.items, []);
  });
});

describe('getEntitiesByRefs', () => {
  test('keeps the order of the refs and puts undefined where nothing matched', async () => {
    const entityRefs = [
      'api:default/petstore',
      'component:default/no-such-component',
      'user:default/alice',
      'group:default/engineering',
      'api:default/petstore',
    ];
    const { items } = await client.getEntitiesByRefs({ entityRefs });
    assert.equal(items.length, entityRefs.length);
    assert.equal(refOf(items[0]), 'api:default/petstore');
    assert.equal(items[1], undefined);
    assert.equal(refOf(items[2]), 'user:default/alice');
    assert.equal(refOf(items[3]), 'group:default/engineering');
    assert.equal(refOf(items[4]), 'api:default/petstore');
    assert.equal(items[4].metadata.uid, items[0].metadata.uid);
    assert.ok(Array.isArray(items[2].relations), 'full, stitched entities');
  });

  test('applies the fields projection to each entity', async () => {
    const { items } = await client.getEntitiesByRefs({
      entityRefs: ['component:default/payments-web', 'resource:default/nope', 'system:default/payments'],
      fields: ['kind', 'metadata.name'],
    });
    assert.deepEqual(items, [
      { kind: 'Component', metadata: { name: 'payments-web' } },
      undefined,
      { kind: 'System', metadata: { name: 'payments' } },
    ]);
  });

  test('entities that do not match the filter come back as undefined', async () => {
    const { items } = await client.getEntitiesByRefs({
      entityRefs: ['component:default/payments-api', 'user:default/bob'],
      filter: { kind: 'user' },
    });
    assert.equal(items.length, 2);
    assert.equal(items[0], undefined);
    assert.equal(refOf(items[1]), 'user:default/bob');
  });
});

describe('queryEntities', () => {
  test('filter + limit gives a page, totalItems and a nextCursor; following the cursors covers the set exactly once', async () => {
    const request = {
      filter: { kind: 'component' },
      orderFields: { field: 'metadata.name', order: 'asc' },
      limit: 2,
    };
    const first = await client.queryEntities(request);
    assert.equal(first.totalItems, 4);
    assert.deepEqual(
      first.items.map(e => e.metadata.name),
      ['fraud-detector', 'ledger-service'],
    );
    assert.equal(typeof first.pageInfo.nextCursor, 'string');
    assert.equal(first.pageInfo.prevCursor, undefined, 'no prevCursor on the first page');

    const second = await client.queryEntities({ cursor: first.pageInfo.nextCursor, limit: 2 });
    assert.equal(second.totalItems, 4);
    assert.deepEqual(
      second.items.map(e => e.metadata.name),
      ['payments-api', 'payments-web'],
    );
    assert.equal(second.pageInfo.nextCursor, undefined, 'no nextCursor on the last page');
    assert.equal(typeof second.pageInfo.prevCursor, 'string');

    const uids = [...first.items, ...second.items].map(e => e.metadata.uid);
    assert.equal(new Set(uids).size, 4, 'pages do not overlap');

    // The cursor remembers filter and order: going back gives the first page.
    const back = await client.queryEntities({ cursor: second.pageInfo.prevCursor, limit: 2 });
    assert.deepEqual(
      back.items.map(e => e.metadata.uid),
      first.items.map(e => e.metadata.uid),
    );
    assert.equal(back.totalItems, 4);
  });

  test('paging the whole catalog with the default order gives every entity exactly once', async () => {
    const seen = [];
    let response = await client.queryEntities({ limit: 5 });
    let pages = 1;
    assert.equal(response.totalItems, FIXTURE_REFS.length);
    seen.push(...response.items);
    while (response.pageInfo.nextCursor) {
      assert.ok(pages < 20, 'pagination terminates');
      response = await client.queryEntities({ cursor: response.pageInfo.nextCursor, limit: 5 });
      pages += 1;
      assert.ok(response.items.length <= 5, 'a page never exceeds the limit');
      assert.equal(response.totalItems, FIXTURE_REFS.length, 'totalItems is stable across pages');
      seen.push(...response.items);
    }
    assert.equal(pages, Math.ceil(FIXTURE_REFS.length / 5));
    assert.deepEqual(refsOf(seen), FIXTURE_REFS);
  });

  test('streamEntities (built on the cursors) yields the whole catalog', async () => {
    const seen = [];
    for await (const page of client.streamEntities({ pageSize: 3 })) {
      seen.push(...page);
    }
    assert.deepEqual(refsOf(seen), FIXTURE_REFS);
  });

  test('without a limit a page holds up to 200 entities, so the whole fixture comes at once', async () => {
    const { items, totalItems, pageInfo } = await client.queryEntities();
    assert.equal(totalItems, FIXTURE_REFS.length);
    assert.deepEqual(refsOf(items), FIXTURE_REFS);
    assert.equal(pageInfo.nextCursor, undefined);
  });

  test('the page size is not part of the cursor: a cursor followed without a limit gets the default', async () => {
    const first = await client.queryEntities({
      orderFields: { field: 'metadata.name', order: 'asc' },
      limit: 2,
    });
    assert.equal(first.items.length, 2);
    const rest = await client.queryEntities({ cursor: first.pageInfo.nextCursor });
    assert.equal(rest.items.length, FIXTURE_REFS.length - 2);
    assert.equal(rest.pageInfo.nextCursor, undefined);
    assert.deepEqual(refsOf([...first.items, ...rest.items]), FIXTURE_REFS);
  });

  test('orderFields on a field some entities lack returns, and counts, only those that have it', async () => {
    for (const order of ['asc', 'desc']) {
      const { items, totalItems } = await client.queryEntities({
        filter: { kind: 'component' },
        orderFields: { field: 'spec.system', order },
      });
      assert.equal(totalItems, 3, `order ${order}`);
      assert.deepEqual(namesOf(items), ['ledger-service', 'payments-api', 'payments-web']);
    }
  });

  test('orderFields sorts descending', async () => {
    const { items, totalItems } = await client.queryEntities({
      filter: { kind: 'user' },
      orderFields: { field: 'metadata.name', order: 'desc' },
    });
    assert.equal(totalItems, 3);
    assert.deepEqual(items.map(e => e.metadata.name), ['carol', 'bob', 'alice']);
  });

  test('offset skips into the ordered result', async () => {
    const { items, totalItems } = await client.queryEntities({
      filter: { kind: 'component' },
      orderFields: { field: 'metadata.name', order: 'asc' },
      offset: 1,
      limit: 2,
    });
    assert.equal(totalItems, 4);
    assert.deepEqual(items.map(e => e.metadata.name), ['ledger-service', 'payments-api']);
  });

  test('fullTextFilter matches a case-insensitive substring of the given fields', async () => {
    const { items, totalItems } = await client.queryEntities({
      filter: { kind: 'component' },
      fullTextFilter: { term: 'PAYMENTS', fields: ['metadata.name'] },
      orderFields: { field: 'metadata.name', order: 'asc' },
    });
    assert.equal(totalItems, 2);
    assert.deepEqual(items.map(e => e.metadata.name), ['payments-api', 'payments-web']);

    const inTitle = await client.queryEntities({
      fullTextFilter: { term: 'platform', fields: ['metadata.title'] },
    });
    assert.deepEqual(refsOf(inTitle.items), ['group:default/platform-team']);
  });

  test('fullTextFilter without fields searches the order field', async () => {
    const { items, totalItems } = await client.queryEntities({
      fullTextFilter: { term: 'ledger' },
      orderFields: { field: 'metadata.name', order: 'asc' },
    });
    assert.equal(totalItems, 2);
    assert.deepEqual(refsOf(items), ['api:default/ledger-grpc', 'component:default/ledger-service']);
    assert.deepEqual(items.map(e => e.metadata.name), ['ledger-grpc', 'ledger-service']);
  });

  test('fields projection applies to every page', async () => {
    const first = await client.queryEntities({
      filter: { kind: 'group' },
      orderFields: { field: 'metadata.name', order: 'asc' },
      fields: ['metadata.name'],
      limit: 1,
    });
    assert.deepEqual(first.items, [{ metadata: { name: 'engineering' } }]);
    const second = await client.queryEntities({
      cursor: first.pageInfo.nextCursor,
      fields: ['metadata.name'],
      limit: 1,
    });
    assert.deepEqual(second.items, [{ metadata: { name: 'platform-team' } }]);
  });
});

describe('getEntityByRef', () => {
  test('string form returns the stitched entity as written, with relations', async () => {
    const entity = await client.getEntityByRef('component:default/payments-api');
    assert.ok(entity);
    assert.equal(entity.apiVersion, 'backstage.io/v1alpha1');
    assert.equal(entity.kind, 'Component');
    assert.equal(entity.metadata.name, 'payments-api');
    assert.equal(entity.metadata.namespace, 'default');
    assert.equal(entity.metadata.title, 'Payments API');
    assert.equal(entity.metadata.description, 'Public HTTP API that accepts and settles payments.');
    assert.deepEqual(entity.metadata.labels, { tier: 'backend' });
    assert.deepEqual(entity.metadata.tags, ['java', 'payments']);
    assert.deepEqual(entity.metadata.links, [
      { url: 'https://runbooks.example.com/payments-api', title: 'Runbook', icon: 'docs' },
    ]);
    // spec is returned as written: refs are not rewritten into full refs
    assert.deepEqual(entity.spec, {
      type: 'service',
      lifecycle: 'production',
      owner: 'platform-team',
      system: 'payments',
      providesApis: ['petstore'],
      dependsOn: ['resource:payments-db'],
    });
    assert.deepEqual(relationsOf(entity), [
      'dependencyOf component:default/payments-web',
      'dependsOn resource:default/payments-db',
      'ownedBy group:default/platform-team',
      'partOf system:default/payments',
      'providesApi api:default/petstore',
    ]);
  });

  test('entities carry the location annotations of where they were read', async () => {
    const entity = await client.getEntityByRef('component:default/payments-api');
    assert.equal(
      entity.metadata.annotations['backstage.io/managed-by-location'],
      `file:${FIXTURES_DIR}/services.yaml`,
    );
    assert.equal(
      entity.metadata.annotations['backstage.io/managed-by-origin-location'],
      `file:${ROOT_TARGET}`,
    );
  });

  test('short string form and object form find the same entity; kind and name are case-insensitive', async () => {
    const full = await client.getEntityByRef('component:default/payments-api');
    const short = await client.getEntityByRef('component:payments-api');
    const object = await client.getEntityByRef({
      kind: 'Component',
      namespace: 'default',
      name: 'payments-api',
    });
    const shouty = await client.getEntityByRef({
      kind: 'COMPONENT',
      namespace: 'default',
      name: 'Payments-API',
    });
    for (const other of [short, object, shouty]) {
      assert.ok(other);
      assert.equal(other.metadata.uid, full.metadata.uid);
    }
  });

  test('an unknown ref gives undefined', async () => {
    assert.equal(await client.getEntityByRef('component:default/no-such-component'), undefined);
    assert.equal(
      await client.getEntityByRef({ kind: 'Group', namespace: 'elsewhere', name: 'platform-team' }),
      undefined,
    );
  });

  test('relations are derived in both directions', async () => {
    const expected = {
      'group:default/engineering': [
        'hasMember user:default/carol',
        'ownerOf api:default/ledger-grpc',
        'ownerOf component:default/ledger-service',
        'parentOf group:default/platform-team',
      ],
      'user:default/alice': ['memberOf group:default/platform-team'],
      'user:default/carol': [
        'memberOf group:default/engineering',
        'ownerOf component:default/fraud-detector',
      ],
      'api:default/petstore': [
        'apiConsumedBy component:default/payments-web',
        'apiProvidedBy component:default/payments-api',
        'ownedBy group:default/platform-team',
        'partOf system:default/payments',
      ],
      'api:default/ledger-grpc': [
        'apiConsumedBy component:default/fraud-detector',
        'apiProvidedBy component:default/ledger-service',
        'ownedBy group:default/engineering',
        'partOf system:default/payments',
      ],
      'resource:default/payments-db': [
        'dependencyOf component:default/ledger-service',
        'dependencyOf component:default/payments-api',
        'ownedBy group:default/platform-team',
        'partOf system:default/payments',
      ],
      'system:default/payments': [
        'hasPart api:default/ledger-grpc',
        'hasPart api:default/petstore',
        'hasPart component:default/ledger-service',
        'hasPart component:default/payments-api',
        'hasPart component:default/payments-web',
        'hasPart resource:default/payments-db',
        'ownedBy group:default/platform-team',
      ],
      'component:default/fraud-detector': [
        'consumesApi api:default/ledger-grpc',
        'dependsOn component:default/ledger-service',
        'ownedBy user:default/carol',
      ],
    };
    for (const [ref, relations] of Object.entries(expected)) {
      const entity = await client.getEntityByRef(ref);
      assert.ok(entity, ref);
      assert.deepEqual(relationsOf(entity), relations, ref);
      for (const relation of entity.relations) {
        assert.equal(typeof relation.type, 'string');
        assert.equal(typeof relation.targetRef, 'string');
      }
    }

    // platform-team also owns the Model, so only check what Backstage derives.
    const team = await client.getEntityByRef('group:default/platform-team');
    const teamRelations = relationsOf(team);
    for (const relation of [
      'childOf group:default/engineering',
      'hasMember user:default/alice',
      'hasMember user:default/bob',
      'ownerOf api:default/petstore',
      'ownerOf component:default/payments-api',
      'ownerOf component:default/payments-web',
      'ownerOf resource:default/payments-db',
      'ownerOf system:default/payments',
    ]) {
      assert.ok(teamRelations.includes(relation), `platform-team: ${relation}`);
    }
    assert.ok(!teamRelations.some(r => r.startsWith('parentOf ')), 'platform-team has no children');
  });

  test('$text placeholders are replaced by the referenced file, verbatim', async () => {
    const api = await client.getEntityByRef('api:default/petstore');
    assert.ok(api);
    assert.equal(api.spec.type, 'openapi');
    assert.equal(api.spec.definition, await fixtureText('petstore-openapi.yaml'));

    const grpc = await client.getEntityByRef('api:default/ledger-grpc');
    const [, inline] = await fixtureDocs('apis.yaml');
    assert.equal(grpc.spec.definition, inline.spec.definition);
  });

  test('the Model kind is served like any other kind', async () => {
    const model = await client.getEntityByRef('model:default/fraud-llm');
    assert.ok(model);
    assert.equal(model.apiVersion, 'atrium.dev/v1alpha1');
    assert.equal(model.kind, 'Model');
    assert.deepEqual(model.spec, {
      type: 'llm',
      owner: 'platform-team',
      lifecycle: 'experimental',
      versions: [{ name: 'v1', uri: 'hf://org/model' }],
    });
    assert.ok(
      relationsOf(model).includes('ownedBy group:default/platform-team'),
      'a Model is ownedBy its spec.owner',
    );
  });
});

describe('getEntityAncestors', () => {
  test("a component's ancestry runs through the fixture's Location up to the registered location's entity", async () => {
    const { rootEntityRef, items } = await client.getEntityAncestors({
      entityRef: 'component:default/payments-api',
    });
    assert.equal(rootEntityRef, 'component:default/payments-api');
    assert.equal(items.length, 3);
    assert.equal(refOf(items[0].entity), 'component:default/payments-api', 'first item is the entity itself');

    const byRef = new Map(items.map(item => [refOf(item.entity), item]));
    assert.deepEqual(byRef.get('component:default/payments-api').parentEntityRefs, [FIXTURE_LOCATION_REF]);
    assert.deepEqual(byRef.get(FIXTURE_LOCATION_REF).parentEntityRefs, [ROOT_LOCATION_REF]);
    assert.deepEqual(byRef.get(ROOT_LOCATION_REF).parentEntityRefs, []);

    const generated = byRef.get(ROOT_LOCATION_REF).entity;
    assert.equal(generated.kind, 'Location');
    assert.equal(generated.spec.type, 'file');
    assert.equal(generated.spec.target, ROOT_TARGET);
    assert.equal(generated.metadata.annotations['backstage.io/managed-by-location'], `file:${ROOT_TARGET}`);
    assert.equal(
      generated.metadata.annotations['backstage.io/managed-by-origin-location'],
      `file:${ROOT_TARGET}`,
    );

    const fixtureLocation = byRef.get(FIXTURE_LOCATION_REF).entity;
    assert.deepEqual(fixtureLocation.spec, {
      targets: ['./org.yaml', './services.yaml', './apis.yaml', './models.yaml'],
    });
  });

  test("the registered location's own entity is a root", async () => {
    const { rootEntityRef, items } = await client.getEntityAncestors({ entityRef: ROOT_LOCATION_REF });
    assert.equal(rootEntityRef, ROOT_LOCATION_REF);
    assert.equal(items.length, 1);
    assert.deepEqual(items[0].parentEntityRefs, []);
  });

  test('an unknown entity is a 404 NotFoundError', async () => {
    await expectResponseError(
      client.getEntityAncestors({ entityRef: 'component:default/no-such-component' }),
      404,
      'NotFoundError',
    );
  });
});

describe('getEntityFacets', () => {
  test('counts kinds across the whole catalog', async () => {
    const { facets } = await client.getEntityFacets({ facets: ['kind'] });
    assert.deepEqual(Object.keys(facets), ['kind']);
    assert.deepEqual([...facets.kind].sort(byValue), [
      { value: 'API', count: 2 },
      { value: 'Component', count: 4 },
      { value: 'Group', count: 2 },
      { value: 'Location', count: 2 },
      { value: 'Model', count: 1 },
      { value: 'Resource', count: 1 },
      { value: 'System', count: 1 },
      { value: 'User', count: 3 },
    ]);
  });

  test('counts spec.type within a filter', async () => {
    const { facets } = await client.getEntityFacets({
      facets: ['spec.type'],
      filter: { kind: 'component' },
    });
    assert.deepEqual([...facets['spec.type']].sort(byValue), [
      { value: 'service', count: 3 },
      { value: 'website', count: 1 },
    ]);

    const ored = await client.getEntityFacets({
      facets: ['spec.type'],
      filter: [{ kind: 'api' }, { kind: 'resource' }],
    });
    assert.deepEqual([...ored.facets['spec.type']].sort(byValue), [
      { value: 'database', count: 1 },
      { value: 'grpc', count: 1 },
      { value: 'openapi', count: 1 },
    ]);
  });

  test('several facets at once, array fields counted per element', async () => {
    const { facets } = await client.getEntityFacets({
      facets: ['spec.lifecycle', 'metadata.tags'],
      filter: { kind: 'component' },
    });
    assert.deepEqual(Object.keys(facets).sort(), ['metadata.tags', 'spec.lifecycle']);
    assert.deepEqual([...facets['spec.lifecycle']].sort(byValue), [
      { value: 'experimental', count: 1 },
      { value: 'production', count: 3 },
    ]);
    assert.deepEqual([...facets['metadata.tags']].sort(byValue), [
      { value: 'frontend', count: 1 },
      { value: 'java', count: 2 },
      { value: 'ml', count: 1 },
      { value: 'payments', count: 1 },
      { value: 'python', count: 1 },
      { value: 'typescript', count: 1 },
    ]);
  });

  test('a facet nothing has is an empty list', async () => {
    const { facets } = await client.getEntityFacets({
      facets: ['spec.doesNotExist'],
      filter: { kind: 'component' },
    });
    assert.deepEqual(facets, { 'spec.doesNotExist': [] });
  });
});

describe('locations', () => {
  async function rootLocation() {
    const { items } = await client.getLocations();
    const root = items.find(l => l.type === 'file' && l.target === ROOT_TARGET);
    assert.ok(root, `a file location with target ${ROOT_TARGET} is registered`);
    return root;
  }

  test('getLocations lists the registered location, with the ref of its entity', async () => {
    const { items } = await client.getLocations();
    const matching = items.filter(l => l.target === ROOT_TARGET);
    assert.equal(matching.length, 1, `one location with target ${ROOT_TARGET}`);
    const root = matching[0];
    assert.equal(typeof root.id, 'string');
    assert.match(root.id, /\S/);
    assert.deepEqual(root, {
      id: root.id,
      type: 'file',
      target: ROOT_TARGET,
      entityRef: ROOT_LOCATION_REF,
    });
  });

  test('getLocationByRef finds it by "type:target"; an unknown ref gives undefined', async () => {
    const root = await rootLocation();
    assert.deepEqual(await client.getLocationByRef(`file:${ROOT_TARGET}`), root);
    assert.equal(await client.getLocationByRef(`file:${FIXTURES_DIR}/nowhere.yaml`), undefined);
  });

  test('queryLocations filters the registered locations and counts them', async () => {
    const root = await rootLocation();
    const all = await client.queryLocations();
    assert.deepEqual(all.items, [root]);
    assert.equal(all.totalItems, 1);
    assert.equal(all.pageInfo.nextCursor, undefined);

    const files = await client.queryLocations({
      query: { type: 'FILE', target: { $hasPrefix: `${FIXTURES_DIR}/` } },
    });
    assert.deepEqual(files.items, [root]);
    const urls = await client.queryLocations({ query: { type: 'url' } });
    assert.deepEqual(urls.items, []);
    assert.equal(urls.totalItems, 0);

    const streamed = [];
    for await (const page of client.streamLocations()) {
      streamed.push(...page);
    }
    assert.deepEqual(streamed, [root]);

    await expectResponseError(client.queryLocations({ query: { kind: 'x' } }), 400, 'InputError');
    await expectResponseError(client.queryLocations({ limit: 0 }), 400, 'InputError');
  });

  test('getLocationById finds it; an unknown id gives undefined', async () => {
    const root = await rootLocation();
    assert.deepEqual(await client.getLocationById(root.id), root);
    assert.equal(await client.getLocationById(randomUUID()), undefined);
  });

  test('getLocationByEntity gives the location an entity originated from', async () => {
    const root = await rootLocation();
    for (const ref of [
      'component:default/payments-api',
      'user:default/bob',
      'model:default/fraud-llm',
      FIXTURE_LOCATION_REF,
    ]) {
      assert.deepEqual(await client.getLocationByEntity(ref), root, ref);
    }
    assert.deepEqual(
      await client.getLocationByEntity({ kind: 'API', namespace: 'default', name: 'petstore' }),
      root,
    );
    assert.equal(await client.getLocationByEntity('component:default/no-such-component'), undefined);
  });
});

describe('validateEntity', () => {
  const locationRef = 'url:https://github.com/example-org/payments/blob/main/catalog-info.yaml';

  test('a valid entity is {valid: true}', async () => {
    const [component] = await fixtureDocs('extra.yaml');
    assert.deepEqual(await client.validateEntity(component, locationRef), { valid: true });

    const [user] = await fixtureDocs('org.yaml').then(docs => docs.filter(d => d.kind === 'User'));
    assert.deepEqual(await client.validateEntity(user, locationRef), { valid: true });
  });

  test('a Model is a valid entity', async () => {
    const [model] = await fixtureDocs('models.yaml');
    assert.deepEqual(await client.validateEntity(model, locationRef), { valid: true });
  });

  test('an invalid metadata.name is {valid: false} with an error naming metadata.name', async () => {
    const [invalid] = await fixtureDocs('invalid.yaml');
    const result = await client.validateEntity(invalid, locationRef);
    assert.equal(result.valid, false);
    assert.ok(Array.isArray(result.errors) && result.errors.length >= 1, 'errors are listed');
    for (const error of result.errors) {
      assert.equal(typeof error.name, 'string');
      assert.equal(typeof error.message, 'string');
    }
    const named = result.errors.find(e => e.message.includes('metadata.name'));
    assert.ok(named, `an error mentions metadata.name: ${JSON.stringify(result.errors)}`);
    assert.equal(named.name, 'InputError');
  });

  test('only url: location refs are accepted; another ref is a TypeError', async () => {
    const [component] = await fixtureDocs('extra.yaml');
    const result = await client.validateEntity(component, `file:${FIXTURES_DIR}/extra.yaml`);
    assert.equal(result.valid, false);
    assert.equal(result.errors.length, 1);
    assert.equal(result.errors[0].name, 'TypeError');
    assert.match(result.errors[0].message, /only 'url:<target>' is supported/);
  });

  test('validating does not store anything', async () => {
    const [invalid] = await fixtureDocs('invalid.yaml');
    await client.validateEntity(invalid, locationRef);
    const [component] = await fixtureDocs('extra.yaml');
    await client.validateEntity(component, locationRef);
    assert.equal(await client.getEntityByRef('component:default/compat-extra'), undefined);
  });
});

describe('refreshEntity', () => {
  test('resolves for a known entity', async () => {
    assert.equal(await client.refreshEntity('component:default/payments-api'), undefined);
    assert.equal(await client.refreshEntity(ROOT_LOCATION_REF), undefined);
  });
});

describe('errors', () => {
  test('an unknown uid is a 404 NotFoundError (GET /entities/by-uid/{uid})', async () => {
    // The client has no getEntityByUid; request the documented endpoint the
    // way its generated API client does, and parse it with the same helper.
    const known = await client.getEntityByRef('user:default/alice');
    const ok = await fetch(`${CATALOG_BASE_URL}/entities/by-uid/${encodeURIComponent(known.metadata.uid)}`);
    assert.equal(ok.status, 200);
    assert.equal(refOf(await ok.json()), 'user:default/alice');

    const missing = await fetch(`${CATALOG_BASE_URL}/entities/by-uid/${randomUUID()}`);
    assert.equal(missing.ok, false);
    await expectResponseError(Promise.reject(await ResponseError.fromResponse(missing)), 404, 'NotFoundError');
  });

  test('a malformed filter is a 400 InputError', async () => {
    // `{ '': 'x' }` is sent as `filter==x`: a condition without a key.
    await expectResponseError(client.getEntities({ filter: { '': 'x' } }), 400, 'InputError');
    await expectResponseError(client.queryEntities({ filter: { '': 'x' } }), 400, 'InputError');
    await expectResponseError(
      client.getEntityFacets({ facets: ['kind'], filter: { '': 'x' } }),
      400,
      'InputError',
    );
  });

  test('error bodies carry the request URL as the catalog router sees it', async () => {
    const err = await expectResponseError(
      client.getEntityAncestors({ entityRef: 'component:default/no-such-component' }),
      404,
      'NotFoundError',
    );
    assert.deepEqual(err.body.request, {
      method: 'GET',
      url: '/entities/by-name/component/default/no-such-component/ancestry',
    });
  });

  test('a zero limit, an empty fields parameter and an order without direction are 400 InputErrors', async () => {
    await expectResponseError(client.getEntities({ limit: 0 }), 400, 'InputError');
    await expectResponseError(client.getEntities({ fields: [''] }), 400, 'InputError');
    await expectResponseError(client.queryEntities({ fields: [''] }), 400, 'InputError');
    await expectResponseError(
      client.getEntities({ order: { field: 'metadata.name', order: 'bogus' } }),
      400,
      'InputError',
    );
    // by-query takes a zero limit: a page of nothing, with the count.
    const counted = await client.queryEntities({ filter: { kind: 'component' }, limit: 0 });
    assert.deepEqual(counted.items, []);
    assert.equal(counted.totalItems, 4);
  });

  test('registering a location of a type the catalog does not read is a 400 InputError', async () => {
    await expectResponseError(client.addLocation({ type: 'gopher', target: 'gopher://x' }), 400, 'InputError');
    await expectResponseError(
      client.addLocation({ type: 'gopher', target: 'gopher://x', dryRun: true }),
      400,
      'InputError',
    );
  });

  test('a malformed cursor is a 400 InputError', async () => {
    await expectResponseError(
      client.queryEntities({ cursor: 'this-is-not-a-cursor' }),
      400,
      'InputError',
    );
  });
});

describe('global fetch as fetchApi (as the Backstage frontend wires it)', () => {
  const browserish = new CatalogClient({
    discoveryApi: { getBaseUrl: async () => CATALOG_BASE_URL },
    fetchApi: { fetch: (input, init) => globalThis.fetch(input, init) },
  });

  test('reads, pages and errors the same way', async () => {
    const entity = await browserish.getEntityByRef('system:default/payments');
    assert.equal(entity?.metadata.name, 'payments');
    const page = await browserish.queryEntities({ filter: { kind: 'group' }, limit: 1 });
    assert.equal(page.totalItems, 2);
    const rest = await browserish.queryEntities({ cursor: page.pageInfo.nextCursor, limit: 1 });
    assert.equal(new Set([...page.items, ...rest.items].map(e => e.metadata.uid)).size, 2);
    assert.equal(await browserish.getEntityByRef('system:default/nope'), undefined);
    await expectResponseError(browserish.getEntities({ filter: { '': 'x' } }), 400, 'InputError');
  });
});

// ---------------------------------------------------------------------------
// Mutations: last, one at a time, only on fixtures/extra.yaml.

describe('mutations (addLocation, removeEntityByUid, removeLocationById)', { concurrency: 1 }, () => {
  const EXTRA_COMPONENT = 'component:default/compat-extra';
  let added;
  let extraUid;

  after(async () => {
    // Leave the catalog as it was even if a step failed half-way.
    const { items } = await client.getLocations().catch(() => ({ items: [] }));
    for (const location of items.filter(l => l.target === EXTRA_TARGET)) {
      await client.removeLocationById(location.id).catch(() => {});
    }
  });

  test('addLocation with dryRun returns the entities it would add and stores nothing', async () => {
    const result = await client.addLocation({ type: 'file', target: EXTRA_TARGET, dryRun: true });
    assert.equal(result.location.type, 'file');
    assert.equal(result.location.target, EXTRA_TARGET);
    assert.equal(result.exists, false);
    assert.deepEqual(refsOf(result.entities), [EXTRA_COMPONENT, EXTRA_LOCATION_REF].sort());
    const component = result.entities.find(e => refOf(e) === EXTRA_COMPONENT);
    assert.deepEqual(component.spec, { type: 'service', lifecycle: 'experimental', owner: 'platform-team' });
    // The location is not stored, so its id is its ref; the entities are not stitched.
    assert.equal(result.location.id, `file:${EXTRA_TARGET}`);
    assert.equal(result.location.entityRef, EXTRA_LOCATION_REF);
    for (const entity of result.entities) {
      assert.equal(entity.relations, undefined, `${refOf(entity)} has no relations`);
    }

    // A tree with an entity that fails processing is refused as a whole.
    await expectResponseError(
      client.addLocation({ type: 'file', target: `${FIXTURES_DIR}/invalid.yaml`, dryRun: true }),
      400,
      'InputError',
    );

    assert.equal(await client.getLocationByRef(`file:${EXTRA_TARGET}`), undefined);
    assert.equal(await client.getEntityByRef(EXTRA_COMPONENT), undefined);
    assert.equal(await client.getEntityByRef(EXTRA_LOCATION_REF), undefined);
  });

  test('addLocation registers a file location whose entities then appear', POLLING_TEST, async () => {
    const result = await client.addLocation({ type: 'file', target: EXTRA_TARGET });
    added = result.location;
    assert.equal(typeof added.id, 'string');
    assert.deepEqual(added, {
      id: added.id,
      type: 'file',
      target: EXTRA_TARGET,
      entityRef: EXTRA_LOCATION_REF,
    });
    assert.deepEqual(result.entities, [], 'entities are only listed on a dry run');

    // Visible as a location at once.
    assert.deepEqual(await client.getLocationById(added.id), added);
    assert.deepEqual(await client.getLocationByRef(`file:${EXTRA_TARGET}`), added);
    assert.ok((await client.getLocations()).items.some(l => l.id === added.id));

    // Its entity appears, stitched, once ingestion has run.
    const component = await waitFor(`${EXTRA_COMPONENT} to be ingested and stitched`, async () => {
      const entity = await client.getEntityByRef(EXTRA_COMPONENT);
      if (!entity) throw new Error('not in the catalog yet');
      if (!relationsOf(entity).includes('ownedBy group:default/platform-team')) {
        throw new Error(`not stitched yet, relations: ${JSON.stringify(entity.relations)}`);
      }
      return entity;
    });
    extraUid = component.metadata.uid;
    assert.equal(
      component.metadata.annotations['backstage.io/managed-by-location'],
      `file:${EXTRA_TARGET}`,
    );
    assert.equal(
      component.metadata.annotations['backstage.io/managed-by-origin-location'],
      `file:${EXTRA_TARGET}`,
    );
    assert.deepEqual(await client.getLocationByEntity(EXTRA_COMPONENT), added);

    const ancestry = await client.getEntityAncestors({ entityRef: EXTRA_COMPONENT });
    const parents = new Map(ancestry.items.map(i => [refOf(i.entity), i.parentEntityRefs]));
    assert.deepEqual(parents.get(EXTRA_COMPONENT), [EXTRA_LOCATION_REF]);
    assert.deepEqual(parents.get(EXTRA_LOCATION_REF), []);
  });

  test('queryLocations pages with a cursor that keeps the page size and the query', async () => {
    assert.ok(added, 'the location was added');
    const first = await client.queryLocations({ limit: 1, query: { type: 'file' } });
    assert.equal(first.items.length, 1);
    assert.equal(first.totalItems, 2);
    assert.equal(typeof first.pageInfo.nextCursor, 'string');
    const second = await client.queryLocations({ cursor: first.pageInfo.nextCursor });
    assert.equal(second.items.length, 1);
    assert.equal(second.pageInfo.nextCursor, undefined);
    assert.deepEqual(
      [...first.items, ...second.items].map(l => l.target).sort(),
      [ROOT_TARGET, EXTRA_TARGET].sort(),
    );
  });

  test('adding the same location again is a 409 ConflictError', async () => {
    assert.ok(added, 'the location was added');
    const err = await expectResponseError(
      client.addLocation({ type: 'file', target: EXTRA_TARGET }),
      409,
      'ConflictError',
    );
    assert.ok(err.body.error.message.includes(EXTRA_TARGET), err.body.error.message);
    const { items } = await client.getLocations();
    assert.equal(items.filter(l => l.target === EXTRA_TARGET).length, 1, 'still one location');
  });

  test('removeEntityByUid deletes that entity', async () => {
    assert.ok(extraUid, 'the entity was ingested');
    assert.equal(await client.removeEntityByUid(extraUid), undefined);
    // The entity with that uid is gone. (Its location still emits it, so it
    // may be ingested again later, but only under a new uid.)
    const { items } = await client.getEntities({ filter: { 'metadata.uid': extraUid } });
    assert.deepEqual(items, []);
    const byUid = await fetch(`${CATALOG_BASE_URL}/entities/by-uid/${extraUid}`);
    assert.equal(byUid.status, 404);
    await byUid.arrayBuffer();
    const again = await client.getEntityByRef(EXTRA_COMPONENT);
    assert.notEqual(again?.metadata.uid, extraUid);
  });

  test('removeEntityByUid of a uid that does not exist succeeds (204, as in Backstage)', async () => {
    assert.equal(await client.removeEntityByUid(randomUUID()), undefined);
  });

  test('removeLocationById removes the location, then its entities', POLLING_TEST, async () => {
    assert.ok(added, 'the location was added');
    assert.equal(await client.removeLocationById(added.id), undefined);

    assert.equal(await client.getLocationById(added.id), undefined);
    assert.equal(await client.getLocationByRef(`file:${EXTRA_TARGET}`), undefined);
    assert.ok(!(await client.getLocations()).items.some(l => l.id === added.id));

    await waitFor(`${EXTRA_LOCATION_REF} and ${EXTRA_COMPONENT} to be removed`, async () => {
      const { items } = await client.getEntitiesByRefs({
        entityRefs: [EXTRA_LOCATION_REF, EXTRA_COMPONENT],
      });
      const left = items.filter(Boolean).map(refOf);
      if (left.length) throw new Error(`still present: ${left.join(', ')}`);
      return true;
    });
  });

  test('removing a location that does not exist is a 404 NotFoundError', async () => {
    assert.ok(added, 'the location was added');
    await expectResponseError(client.removeLocationById(added.id), 404, 'NotFoundError');
    await expectResponseError(client.removeLocationById(randomUUID()), 404, 'NotFoundError');
  });

  test('afterwards the catalog holds exactly the fixture again', POLLING_TEST, async () => {
    await waitFor('the catalog to hold exactly the fixture', async () => {
      const { items } = await client.getEntities({ fields: ['kind', 'metadata.namespace', 'metadata.name'] });
      const refs = refsOf(items);
      const extra = refs.filter(r => !FIXTURE_REFS.includes(r));
      const missing = FIXTURE_REFS.filter(r => !refs.includes(r));
      if (extra.length || missing.length || refs.length !== FIXTURE_REFS.length) {
        throw new Error(`extra: [${extra}] missing: [${missing}] count: ${refs.length}`);
      }
      return true;
    });
    const { items } = await client.getLocations();
    assert.deepEqual(items.filter(l => l.target === EXTRA_TARGET), []);
    assert.ok(items.some(l => l.target === ROOT_TARGET));
  });
});
