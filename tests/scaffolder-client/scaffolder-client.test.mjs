// Wire-compatibility suite: Backstage's own ScaffolderClient
// (@backstage/plugin-scaffolder-common) against a running Atrium. Everything
// goes through the client's public methods, except two things the client
// cannot do in Node or at all:
//   - the SSE endpoint GET /v2/tasks/{id}/eventstream: the client reads it
//     with @microsoft/fetch-event-source, written for browsers; here it is read
//     with fetch and parsed frame by frame, as a Backstage frontend's stream
//     sees it (one test also drives the client's own EventSource path, given
//     a minimal window/document shim for that test only);
//   - the `status` filter of GET /v2/tasks, which the generated API client
//     sends but ScaffolderClient.listTasks does not expose: requested with
//     fetch in the same query form (`status=a&status=b`).
// A pass means a Backstage frontend or backend that uses ScaffolderClient
// works against Atrium unchanged.
//
// CONTRACT WITH THE RUST HARNESS (server/tests/scaffolder_client.rs)
// ------------------------------------------------------------------
//   1. Atrium on a fresh, empty database, no auth on /api/scaffolder (the
//      suite sends no token), `file` locations allowed under the fixtures
//      directory;
//   2. ONE location registered: type `file`, target
//      `${ATRIUM_FIXTURES_DIR}/catalog.yaml`, ingested before the suite runs
//      (its three templates are in the catalog);
//   3. the scaffolder's workers running, so created tasks run;
//   4. `node --test` with ATRIUM_URL (base URL, no trailing slash) and
//      ATRIUM_FIXTURES_DIR (absolute path of tests/scaffolder-client/fixtures);
//      optionally ATRIUM_POLL_TIMEOUT_MS (default 30000): how long a task may
//      take before a stream is given up.
//
// The client is built with the minimum its methods use:
//   discoveryApi  { getBaseUrl: async () => `${ATRIUM_URL}/api/scaffolder` }
//   fetchApi      { fetch } (Node's global fetch, as the Backstage frontend's
//                 FetchApi); one test uses the client's default (cross-fetch)
//   identityApi   a stub whose getBackstageIdentity() answers guest (only
//                 listTasks calls it, for filterByOwnership: 'owned')
//   scmIntegrationsApi  not given: only getIntegrationsList reads it, and that
//                 method never talks to the server
//   useLongPollingLogs: true (streamLogs' default is the browser EventSource
//                 path, see above)
// Tests run in order, one at a time; no fixed sleeps: streams end on the
// task's `completion` event, bounded by a deadline.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ScaffolderClient } from '@backstage/plugin-scaffolder-common';
import { ResponseError } from '@backstage/errors';

// ---------------------------------------------------------------------------
// Environment

const ATRIUM_URL = (process.env.ATRIUM_URL ?? '').replace(/\/+$/, '');
if (!ATRIUM_URL) {
  throw new Error(
    'ATRIUM_URL is not set: run this suite through the Rust harness ' +
      '(cargo nextest run -p atrium --test scaffolder_client), or set it to a running Atrium ' +
      'that registered fixtures/catalog.yaml and runs scaffolder workers',
  );
}
const FIXTURES_DIR = path.resolve(
  process.env.ATRIUM_FIXTURES_DIR ??
    path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures'),
);
const POLL_TIMEOUT_MS = Number(process.env.ATRIUM_POLL_TIMEOUT_MS ?? 30_000);
const SCAFFOLDER_BASE_URL = `${ATRIUM_URL}/api/scaffolder`;

// Atrium has no sign-in yet: every task is created by Backstage's guest user.
const GUEST = 'user:default/guest';

const identityOf = (userEntityRef) => ({
  getBackstageIdentity: async () => ({
    type: 'user',
    userEntityRef,
    ownershipEntityRefs: [userEntityRef],
  }),
});

const newClient = (options = {}) =>
  new ScaffolderClient({
    discoveryApi: { getBaseUrl: async () => SCAFFOLDER_BASE_URL },
    fetchApi: { fetch },
    identityApi: identityOf(GUEST),
    useLongPollingLogs: true,
    ...options,
  });

const client = newClient();

// ---------------------------------------------------------------------------
// Helpers

/** Every event of a task, through client.streamLogs (long polling), until its completion event. */
function collectLogs(taskId, { after, scaffolder = client } = {}) {
  return new Promise((resolve, reject) => {
    const events = [];
    let subscription;
    const timer = setTimeout(() => {
      subscription?.unsubscribe();
      reject(
        new Error(
          `task ${taskId}: no completion event within ${POLL_TIMEOUT_MS} ms; got ${JSON.stringify(events)}`,
        ),
      );
    }, POLL_TIMEOUT_MS);
    subscription = scaffolder.streamLogs({ taskId, after }).subscribe({
      next: (event) => events.push(event),
      error: (error) => {
        clearTimeout(timer);
        reject(error);
      },
      complete: () => {
        clearTimeout(timer);
        resolve(events);
      },
    });
  });
}

/** The first event of a task that satisfies `predicate` (the stream is then left). */
function firstLog(taskId, predicate) {
  return new Promise((resolve, reject) => {
    let subscription;
    const timer = setTimeout(() => {
      subscription?.unsubscribe();
      reject(new Error(`task ${taskId}: no matching event within ${POLL_TIMEOUT_MS} ms`));
    }, POLL_TIMEOUT_MS);
    subscription = client.streamLogs({ taskId }).subscribe({
      next: (event) => {
        if (predicate(event)) {
          clearTimeout(timer);
          subscription?.unsubscribe();
          resolve(event);
        }
      },
      error: (error) => {
        clearTimeout(timer);
        reject(error);
      },
      complete: () => {
        clearTimeout(timer);
        reject(new Error(`task ${taskId} completed before a matching event`));
      },
    });
  });
}

/** Reads an SSE response to its end: [{event, data, id}] per frame (data JSON-parsed). */
async function readEventStream(response) {
  const frames = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const flush = (block) => {
    const frame = { event: 'message', data: [] };
    for (const line of block.split(/\r?\n/)) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') frame.event = value;
      else if (field === 'data') frame.data.push(value);
      else if (field === 'id') frame.id = value;
    }
    // A frame without data (a keep-alive comment) is no event.
    if (frame.data.length > 0) {
      frames.push({ ...frame, data: JSON.parse(frame.data.join('\n')) });
    }
  };
  for await (const chunk of response.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) !== -1) {
      const match = buffer.slice(end).match(/^\r?\n\r?\n/);
      flush(buffer.slice(0, end));
      buffer = buffer.slice(end + match[0].length);
    }
  }
  if (buffer.trim()) flush(buffer);
  return frames;
}

const withDeadline = (promise, what) =>
  Promise.race([
    promise,
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: no answer within ${POLL_TIMEOUT_MS} ms`)), POLL_TIMEOUT_MS).unref(),
    ),
  ]);

const messages = (events) => events.filter((e) => e.type === 'log').map((e) => e.body.message);

const b64 = (text) => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (text) => Buffer.from(text, 'base64').toString('utf8');

// Task ids the suite created, for the listTasks checks at the end.
const created = { hello: [], failed: [], cancelled: [] };

// ---------------------------------------------------------------------------

describe('listActions', () => {
  test('lists the built-in actions with their input schemas', async () => {
    const actions = await client.listActions();
    assert.ok(Array.isArray(actions), 'an array of actions');
    const ids = actions.map((a) => a.id);
    for (const id of ['debug:log', 'fetch:template', 'fetch:plain', 'publish:git', 'catalog:register']) {
      assert.ok(ids.includes(id), `${id} is listed (got ${ids.join(', ')})`);
    }
    assert.equal(new Set(ids).size, ids.length, 'each action listed once');
    for (const action of actions) {
      assert.equal(typeof action.id, 'string');
      assert.equal(typeof action.schema?.input, 'object', `${action.id} has an input schema`);
      assert.equal(action.schema.input.type, 'object', `${action.id} takes an object`);
    }
    // What the template editor's action documentation shows.
    const fetchTemplate = actions.find((a) => a.id === 'fetch:template');
    assert.ok(fetchTemplate.description, 'fetch:template is described');
    assert.ok(fetchTemplate.schema.input.properties.url, 'fetch:template takes url');
    assert.deepEqual(fetchTemplate.schema.input.required, ['url']);
    const log = actions.find((a) => a.id === 'debug:log');
    assert.ok(log.schema.input.properties.message, 'debug:log takes message');
  });
});

describe('listTemplatingExtensions', () => {
  test("lists Backstage's filters with their schemas and examples, and no globals", async () => {
    const extensions = await client.listTemplatingExtensions();
    assert.deepEqual(
      Object.keys(extensions.filters).sort(),
      ['parseEntityRef', 'parseRepoUrl', 'pick', 'projectSlug'],
    );
    for (const [name, filter] of Object.entries(extensions.filters)) {
      assert.ok(filter.description, `${name} is described`);
      assert.equal(typeof filter.schema?.output, 'object', `${name} says what it gives`);
      assert.ok(filter.examples.length > 0, `${name} has an example`);
    }
    assert.deepEqual(extensions.filters.parseEntityRef.schema.output.required, ['kind', 'namespace', 'name']);
    assert.deepEqual(extensions.globals, { functions: {}, values: {} });
  });
});

describe('autocomplete', () => {
  // The harness configures the host github.test, whose API is a fake that answers GET /user/orgs
  // once, for the token below only (and fails the Rust test on any other request).
  test("github owners: the organisations of the caller's token", async () => {
    const answer = await client.autocomplete({
      token: 'gho_callersOwnToken',
      provider: 'github',
      resource: 'owners',
      context: { host: 'github.test' },
    });
    assert.deepEqual(answer, { results: [{ id: 'acme' }, { id: 'northwind' }] });
  });

  test('an unknown resource or provider is a 400 InputError naming it', async () => {
    for (const [provider, resource, text] of [
      ['github', 'repositories', 'Invalid resource: repositories'],
      ['bitbucket', 'workspaces', 'Unsupported provider: bitbucket'],
    ]) {
      await assert.rejects(
        client.autocomplete({ token: 't', provider, resource, context: {} }),
        (error) => {
          assert.ok(error instanceof ResponseError, `ResponseError, got ${error}`);
          assert.equal(error.response.status, 400);
          assert.equal(error.body.error.name, 'InputError');
          assert.ok(error.body.error.message.includes(text), error.body.error.message);
          return true;
        },
      );
    }
  });
});

describe('getTemplateParameterSchema', () => {
  test('answers the title and one step per parameter page, with its schema', async () => {
    const schema = await client.getTemplateParameterSchema('template:default/hello-service');
    assert.equal(schema.title, 'Hello service');
    assert.equal(schema.description, 'Logs a greeting, renders a small skeleton and lists it.');
    assert.equal(schema.steps.length, 2);
    const [about, details] = schema.steps;
    assert.equal(about.title, 'About the service');
    assert.equal(about.description, 'What the service is called');
    assert.deepEqual(about.schema.required, ['name']);
    assert.equal(about.schema.properties.name.pattern, '^[a-z][a-z0-9-]*$');
    assert.equal(details.title, 'Details');
    assert.deepEqual(details.schema.properties.flavour.enum, ['plain', 'fancy']);
  });

  test('takes a short reference (kind defaults to template, namespace to default)', async () => {
    const schema = await client.getTemplateParameterSchema('hello-service');
    assert.equal(schema.title, 'Hello service');
  });

  test('an unknown template is a NotFoundError ResponseError', async () => {
    await assert.rejects(
      client.getTemplateParameterSchema('template:default/no-such-template'),
      (error) => {
        assert.ok(error instanceof ResponseError, `ResponseError, got ${error}`);
        assert.equal(error.response.status, 404);
        assert.equal(error.body.error.name, 'NotFoundError');
        return true;
      },
    );
  });
});

describe('scaffold, getTask, streamLogs', () => {
  test('invalid values: scaffold throws with the 400 body (the validation errors)', async () => {
    await assert.rejects(
      client.scaffold({
        templateRef: 'template:default/hello-service',
        values: { name: 'Not A Valid Name' },
      }),
      (error) => {
        assert.match(error.message, /^Backend request failed, 400 Bad Request /);
        const body = JSON.parse(error.message.replace(/^Backend request failed, 400 Bad Request /, ''));
        assert.ok(Array.isArray(body.errors) && body.errors.length > 0, error.message);
        const [first] = body.errors;
        assert.equal(first.property, 'instance.name');
        assert.equal(first.name, 'pattern');
        assert.equal(typeof first.message, 'string');
        assert.equal(typeof first.stack, 'string');
        return true;
      },
    );
    await assert.rejects(
      client.scaffold({ templateRef: 'template:default/hello-service', values: {} }),
      (error) => {
        assert.match(error.message, /^Backend request failed, 400 /);
        assert.match(error.message, /"name":"required"/);
        return true;
      },
    );
  });

  test('scaffold answers a task id; the task runs to completed with its output', async () => {
    const values = { name: 'svc-one', flavour: 'fancy' };
    const { taskId } = await client.scaffold({ templateRef: 'template:default/hello-service', values });
    assert.match(taskId, /^[0-9a-f-]{36}$/);
    created.hello.push(taskId);

    const first = await client.getTask(taskId);
    assert.equal(first.id, taskId);
    assert.ok(['open', 'processing', 'completed'].includes(first.status), first.status);
    assert.deepEqual(first.spec.parameters, values);

    const events = await collectLogs(taskId);
    // Ids increase; every event names its task; the last one is the completion.
    for (let i = 1; i < events.length; i++) {
      assert.ok(events[i].id > events[i - 1].id, 'event ids increase');
    }
    for (const event of events) {
      assert.equal(event.taskId, taskId);
      assert.equal(typeof event.createdAt, 'string');
      assert.ok(!Number.isNaN(Date.parse(event.createdAt)), event.createdAt);
    }
    const completion = events.at(-1);
    assert.equal(completion.type, 'completion');
    assert.equal(events.filter((e) => e.type === 'completion').length, 1);
    assert.deepEqual(completion.body.output, {
      greeting: 'Hello svc-one',
      links: [{ title: 'Handbook', url: 'https://handbook.example.com/services/svc-one' }],
      text: [{ title: 'Done', content: 'Created svc-one' }],
    });
    assert.equal(completion.body.error, undefined);

    // Log events in step order, each step bracketed by its status events (what the task page shows).
    const logs = events.filter((e) => e.type === 'log');
    const greeting = logs.findIndex((e) => e.body.message === 'Hello svc-one');
    assert.ok(greeting >= 0, `the greeting is logged: ${JSON.stringify(messages(events))}`);
    assert.equal(logs[greeting].body.stepId, 'greet');
    const statusOf = (stepId, status) =>
      logs.findIndex((e) => e.body.stepId === stepId && e.body.status === status);
    const order = [
      statusOf('greet', 'processing'),
      greeting,
      statusOf('greet', 'completed'),
      statusOf('fetch', 'processing'),
      statusOf('fetch', 'completed'),
      statusOf('show', 'processing'),
      statusOf('show', 'completed'),
    ];
    assert.ok(order.every((i) => i >= 0), `every step reports its status: ${JSON.stringify(order)}`);
    assert.deepEqual([...order].sort((a, b) => a - b), order, 'events come in step order');
    // The skeleton was rendered into the workspace, file names included.
    const listing = logs.find((e) => e.body.stepId === 'show' && e.body.message.startsWith('Workspace'));
    assert.ok(listing, 'listWorkspace logged the files');
    assert.match(listing.body.message, /README\.md/);
    assert.match(listing.body.message, /docs\/svc-one\.yaml/);

    const done = await client.getTask(taskId);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.spec.parameters, values);
    assert.equal(done.spec.apiVersion, 'scaffolder.backstage.io/v1beta3');
    assert.equal(done.spec.templateInfo.entityRef, 'template:default/hello-service');
    assert.equal(done.spec.templateInfo.entity.metadata.title, 'Hello service');
    assert.deepEqual(
      done.spec.steps.map((s) => [s.id, s.name, s.action]),
      [
        ['greet', 'Greet', 'debug:log'],
        ['fetch', 'Render the skeleton', 'fetch:template'],
        ['show', 'List the workspace', 'debug:log'],
      ],
    );
    assert.equal(done.spec.user.ref, GUEST);
    assert.equal(done.createdBy, GUEST);
    assert.ok(!Number.isNaN(Date.parse(done.createdAt)), done.createdAt);
    assert.equal(done.secrets, undefined, 'a task never shows secrets');
  });

  test('streamLogs with `after` resumes after that event', async () => {
    const taskId = created.hello[0];
    const all = await collectLogs(taskId);
    const middle = all[Math.floor(all.length / 2)];
    const rest = await collectLogs(taskId, { after: middle.id });
    assert.deepEqual(
      rest.map((e) => e.id),
      all.filter((e) => e.id > middle.id).map((e) => e.id),
    );
    assert.equal(rest.at(-1).type, 'completion');
  });

  test('secrets are accepted and never come back in the task', async () => {
    const { taskId } = await client.scaffold({
      templateRef: 'template:default/hello-service',
      values: { name: 'svc-two' },
      secrets: { token: 's3cr3t-value' },
    });
    created.hello.push(taskId);
    const events = await collectLogs(taskId);
    assert.equal(events.at(-1).body.output.greeting, 'Hello svc-two');
    const task = await client.getTask(taskId);
    assert.equal(task.status, 'completed');
    assert.ok(!JSON.stringify(task).includes('s3cr3t-value'), 'the secret is not in the task');
    assert.ok(!JSON.stringify(events).includes('s3cr3t-value'), 'the secret is not in the events');
  });

  test('getTask of an unknown task is a 404 ResponseError', async () => {
    await assert.rejects(client.getTask('00000000-0000-4000-8000-000000000000'), (error) => {
      assert.ok(error instanceof ResponseError, `ResponseError, got ${error}`);
      assert.equal(error.response.status, 404);
      assert.equal(error.body.error.name, 'NotFoundError');
      return true;
    });
  });

  test('the client with its default fetch (cross-fetch) reads a task too', async () => {
    const defaultFetch = new ScaffolderClient({
      discoveryApi: { getBaseUrl: async () => SCAFFOLDER_BASE_URL },
      useLongPollingLogs: true,
    });
    const task = await defaultFetch.getTask(created.hello[0]);
    assert.equal(task.status, 'completed');
    const events = await collectLogs(created.hello[0], { scaffolder: defaultFetch });
    assert.equal(events.at(-1).type, 'completion');
  });
});

describe('GET /v2/tasks/{id}/eventstream (SSE, read with fetch)', () => {
  test('a running task: log frames as they come, ending after the completion frame', async () => {
    const { taskId } = await client.scaffold({
      templateRef: 'template:default/hello-service',
      values: { name: 'svc-sse' },
    });
    created.hello.push(taskId);
    const response = await fetch(`${SCAFFOLDER_BASE_URL}/v2/tasks/${encodeURIComponent(taskId)}/eventstream`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /^text\/event-stream/);
    // The stream ends by itself after `completion` (the deadline only guards a hang).
    const frames = await withDeadline(readEventStream(response), 'eventstream');
    assert.ok(frames.length > 0);
    for (const frame of frames) {
      assert.equal(frame.event, frame.data.type, 'the SSE event name is the event type');
      assert.equal(frame.data.taskId, taskId);
    }
    assert.equal(frames.at(-1).event, 'completion');
    assert.equal(frames.filter((f) => f.event === 'completion').length, 1);
    assert.equal(frames.at(-1).data.body.output.greeting, 'Hello svc-sse');
    assert.ok(frames.some((f) => f.event === 'log' && f.data.body.message === 'Hello svc-sse'));
    // The same events, in the same order, as the long poll gives.
    const polled = await collectLogs(taskId);
    assert.deepEqual(
      frames.map((f) => f.data.id),
      polled.map((e) => e.id),
    );
  });

  test("the client's own EventSource path (streamLogs without long polling), given a browser shim", async () => {
    // @microsoft/fetch-event-source touches `window` and `document` (visibility, retry timer): give
    // it the least of them for this test only.
    const shimmed = ['window', 'document'].filter((name) => !(name in globalThis));
    globalThis.window ??= { setTimeout, clearTimeout, fetch };
    globalThis.document ??= { hidden: false, addEventListener() {}, removeEventListener() {} };
    try {
      const sse = newClient({ useLongPollingLogs: false });
      const { taskId } = await sse.scaffold({
        templateRef: 'template:default/hello-service',
        values: { name: 'svc-eventsource' },
      });
      created.hello.push(taskId);
      const events = await collectLogs(taskId, { scaffolder: sse });
      assert.equal(events.at(-1).type, 'completion');
      assert.equal(events.at(-1).body.output.greeting, 'Hello svc-eventsource');
      assert.ok(messages(events).includes('Hello svc-eventsource'));
      const polled = await collectLogs(taskId);
      assert.deepEqual(
        events.map((e) => e.id),
        polled.map((e) => e.id),
      );
    } finally {
      for (const name of shimmed) delete globalThis[name];
    }
  });

  test('`after` skips the events already seen', async () => {
    const taskId = created.hello.at(-1);
    const all = await collectLogs(taskId);
    const cut = all[1].id;
    const response = await fetch(`${SCAFFOLDER_BASE_URL}/v2/tasks/${taskId}/eventstream?after=${cut}`);
    const frames = await withDeadline(readEventStream(response), 'eventstream');
    assert.deepEqual(
      frames.map((f) => f.data.id),
      all.filter((e) => e.id > cut).map((e) => e.id),
    );
  });
});

describe('a failing step', () => {
  test('the task ends failed; the completion event carries the error', async () => {
    const { taskId } = await client.scaffold({ templateRef: 'template:default/always-fails', values: {} });
    created.failed.push(taskId);
    const events = await collectLogs(taskId);
    const completion = events.at(-1);
    assert.equal(completion.type, 'completion');
    assert.equal(typeof completion.body.error?.message, 'string', JSON.stringify(completion.body));
    assert.match(completion.body.error.message, /no-such-skeleton/);
    assert.equal(typeof completion.body.message, 'string');
    assert.equal(completion.body.output, undefined, 'a failed run has no output');
    // The step before ran; the failing step is marked failed; the one after never started.
    assert.ok(messages(events).includes('about to fail'));
    assert.ok(events.some((e) => e.body.stepId === 'boom' && e.body.status === 'failed'));
    assert.ok(!events.some((e) => e.body.stepId === 'never'), 'no event from the step after');
    const task = await client.getTask(taskId);
    assert.equal(task.status, 'failed');
  });

  test('retry answers a task id that runs the template again', async () => {
    const [failedId] = created.failed;
    const { id } = await client.retry(failedId);
    assert.equal(typeof id, 'string');
    created.failed.push(id);
    const events = await collectLogs(id);
    assert.equal(events.at(-1).type, 'completion');
    assert.match(events.at(-1).body.error.message, /no-such-skeleton/);
    const task = await client.getTask(id);
    assert.equal(task.status, 'failed');
    assert.equal(task.spec.templateInfo.entityRef, 'template:default/always-fails');
  });
});

describe('cancelTask', () => {
  test('cancelling a running task: {status: cancelled}, the run stops, the task ends cancelled', async () => {
    const { taskId } = await client.scaffold({ templateRef: 'template:default/slow-steps', values: {} });
    created.cancelled.push(taskId);
    // Wait until the run is under way (its first step began).
    await firstLog(taskId, (e) => e.body.stepId === 'wait-1' && e.body.status === 'processing');
    const answer = await client.cancelTask(taskId);
    assert.deepEqual(answer, { status: 'cancelled' });
    const events = await collectLogs(taskId);
    assert.equal(events.at(-1).type, 'completion');
    assert.ok(events.some((e) => e.type === 'cancelled'), 'a cancelled event');
    assert.ok(
      !events.some((e) => e.body.stepId === 'wait-20'),
      'the run stopped long before its last step',
    );
    const task = await client.getTask(taskId);
    assert.equal(task.status, 'cancelled');
  });

  test('cancelling an unknown task is a 404 ResponseError', async () => {
    await assert.rejects(client.cancelTask('00000000-0000-4000-8000-000000000000'), (error) => {
      assert.ok(error instanceof ResponseError, `ResponseError, got ${error}`);
      assert.equal(error.response.status, 404);
      return true;
    });
  });
});

describe('listTasks', () => {
  const mine = () => [...created.hello, ...created.failed, ...created.cancelled];

  test("filterByOwnership 'all': every task, with totalTasks", async () => {
    const { tasks, totalTasks } = await client.listTasks({ filterByOwnership: 'all' });
    assert.equal(totalTasks, mine().length);
    assert.deepEqual(tasks.map((t) => t.id).sort(), mine().sort());
    for (const task of tasks) {
      assert.ok(['completed', 'failed', 'cancelled'].includes(task.status), task.status);
      assert.equal(task.createdBy, GUEST);
      assert.equal(typeof task.spec.templateInfo.entityRef, 'string');
    }
    // Newest first, as Backstage lists them by default.
    const times = tasks.map((t) => Date.parse(t.createdAt));
    assert.deepEqual([...times].sort((a, b) => b - a), times);
  });

  test("filterByOwnership 'owned': the tasks the signed-in user created", async () => {
    const owned = await client.listTasks({ filterByOwnership: 'owned' });
    assert.equal(owned.totalTasks, mine().length, 'guest created them all');
    const someoneElse = newClient({ identityApi: identityOf('user:default/nobody') });
    const none = await someoneElse.listTasks({ filterByOwnership: 'owned' });
    assert.deepEqual(none, { tasks: [], totalTasks: 0 });
  });

  test('limit and offset page through the tasks; totalTasks counts them all', async () => {
    const all = await client.listTasks({ filterByOwnership: 'all' });
    const pages = [];
    for (let offset = 0; offset < all.totalTasks; offset += 2) {
      const page = await client.listTasks({ filterByOwnership: 'all', limit: 2, offset });
      assert.equal(page.totalTasks, all.totalTasks);
      assert.ok(page.tasks.length <= 2);
      pages.push(...page.tasks.map((t) => t.id));
    }
    assert.deepEqual(pages, all.tasks.map((t) => t.id), 'the pages add up to the whole list, in order');
    const past = await client.listTasks({ filterByOwnership: 'all', limit: 2, offset: all.totalTasks });
    assert.deepEqual(past.tasks, []);
  });

  test('the status filter (sent as the generated API client sends it)', async () => {
    const response = await fetch(`${SCAFFOLDER_BASE_URL}/v2/tasks?status=failed&status=cancelled`);
    assert.equal(response.status, 200);
    const { tasks, totalTasks } = await response.json();
    const expected = [...created.failed, ...created.cancelled].sort();
    assert.equal(totalTasks, expected.length);
    assert.deepEqual(tasks.map((t) => t.id).sort(), expected);
  });

  test('listTasks without an identityApi throws before any request (client-side check)', async () => {
    const anonymous = newClient({ identityApi: undefined });
    await assert.rejects(anonymous.listTasks({ filterByOwnership: 'all' }), /IdentityApi is not available/);
  });
});

describe('dryRun', () => {
  const template = {
    apiVersion: 'scaffolder.backstage.io/v1beta3',
    kind: 'Template',
    metadata: { name: 'dry-run-template', title: 'Dry run' },
    spec: {
      owner: 'group:default/platform-team',
      type: 'service',
      parameters: [
        { title: 'About', required: ['name'], properties: { name: { type: 'string' } } },
      ],
      steps: [
        {
          id: 'fetch',
          name: 'Render',
          action: 'fetch:template',
          input: { url: './skeleton', values: { name: '${{ parameters.name }}' } },
        },
        { id: 'log', name: 'Log', action: 'debug:log', input: { message: 'dry ${{ parameters.name }}' } },
        {
          id: 'publish',
          name: 'Publish',
          action: 'publish:git',
          input: { repoUrl: 'localhost?owner=o&repo=${{ parameters.name }}' },
        },
      ],
      output: { text: [{ title: 'Name', content: '${{ parameters.name }}' }] },
    },
  };

  test('renders the inline skeleton: directoryContents (base64), log, steps and output', async () => {
    const result = await client.dryRun({
      template,
      values: { name: 'dry-svc' },
      directoryContents: [
        { path: 'template.yaml', base64Content: b64('not read by the dry run\n') },
        { path: 'skeleton/README.md', base64Content: b64('# ${{ values.name }}\n') },
        { path: 'skeleton/src/${{ values.name }}.txt', base64Content: b64('hello ${{ values.name }}\n') },
      ],
    });
    const files = Object.fromEntries(result.directoryContents.map((f) => [f.path, unb64(f.base64Content)]));
    assert.deepEqual(files, {
      'README.md': '# dry-svc\n',
      'src/dry-svc.txt': 'hello dry-svc\n',
    });
    for (const file of result.directoryContents) {
      assert.equal(typeof file.executable, 'boolean');
    }
    assert.ok(Array.isArray(result.log));
    const logged = result.log.map((l) => l.body.message);
    assert.ok(logged.includes('dry dry-svc'), JSON.stringify(logged));
    // publish:git has effects outside the workspace: a dry run does not run it.
    assert.ok(
      result.log.some((l) => l.body.stepId === 'publish' && l.body.status === 'skipped'),
      JSON.stringify(logged),
    );
    assert.deepEqual(
      result.steps.map((s) => [s.id, s.name, s.action]),
      [
        ['fetch', 'Render', 'fetch:template'],
        ['log', 'Log', 'debug:log'],
        ['publish', 'Publish', 'publish:git'],
      ],
    );
    assert.deepEqual(result.output, { text: [{ title: 'Name', content: 'dry-svc' }] });
  });

  test('invalid values: a ResponseError with the 400 status', async () => {
    await assert.rejects(
      client.dryRun({ template, values: {}, directoryContents: [] }),
      (error) => {
        assert.ok(error instanceof ResponseError, `ResponseError, got ${error}`);
        assert.equal(error.response.status, 400);
        return true;
      },
    );
  });

  test('the fixture skeleton, sent the way the template editor sends a local directory', async () => {
    const dir = path.join(FIXTURES_DIR, 'templates/hello-service');
    const readme = await readFile(path.join(dir, 'skeleton/README.md'), 'utf8');
    const result = await client.dryRun({
      template: { ...template, spec: { ...template.spec, steps: template.spec.steps.slice(0, 1) } },
      values: { name: 'from-fixture' },
      directoryContents: [{ path: 'skeleton/README.md', base64Content: b64(readme) }],
    });
    assert.deepEqual(
      result.directoryContents.map((f) => [f.path, unb64(f.base64Content)]),
      [['README.md', readme.replace('${{ values.name }}', 'from-fixture')]],
    );
  });
});

describe('what this Atrium does not serve yet (todo: reported, not failing)', () => {
  test(
    'listTemplatingExtensions (GET /v2/templating-extensions)',
    { todo: 'Atrium has no /v2/templating-extensions route' },
    async () => {
      const extensions = await client.listTemplatingExtensions();
      assert.equal(typeof extensions.filters, 'object');
      assert.ok(extensions.filters.parseRepoUrl, 'parseRepoUrl is described');
      assert.equal(typeof extensions.globals.functions, 'object');
      assert.equal(typeof extensions.globals.values, 'object');
    },
  );
});
