// Backstage's ScaffolderClient against an Atrium that requires credentials (no guest mode), given API
// tokens the way Backstage code passes them: per request (`{ token }` as the last argument, as backend
// plugins do) or by a FetchApi that adds `Authorization: Bearer` (as the Backstage frontend does).
//
// Run by server/tests/scaffolder_client.rs (backstage_scaffolder_client_works_with_api_tokens) on the
// same fixtures as scaffolder-client.test.mjs (fixtures/catalog.yaml registered and ingested, the
// scaffolder's workers running), with ATRIUM_URL and three tokens:
//   ATRIUM_READ_TOKEN   user:default/reader, catalog:read
//   ATRIUM_RUN_TOKEN    user:default/runner, catalog:read + template:run:default/hello-service
//   ATRIUM_OTHER_TOKEN  user:default/other, the same scopes as the runner's (so what it is refused is
//                       refused because the task is not its own, not for a missing scope)
// Skipped when they are not set (the main suite's run, which serves in guest mode).
//
// What Atrium enforces (server/src/auth/middleware.rs, server/src/scaffolder/service.rs): reads of
// /api/scaffolder need catalog:read; creating a task needs template:run:<that template>, checked
// before the template is looked up; a task is seen only by its creator (or an admin): to anyone else
// it does not exist (404).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ScaffolderClient } from '@backstage/plugin-scaffolder-common';
import { ResponseError } from '@backstage/errors';

const ATRIUM_URL = (process.env.ATRIUM_URL ?? '').replace(/\/+$/, '');
const READ = process.env.ATRIUM_READ_TOKEN;
const RUN = process.env.ATRIUM_RUN_TOKEN;
const OTHER = process.env.ATRIUM_OTHER_TOKEN;
const skip =
  !ATRIUM_URL || !READ || !RUN || !OTHER
    ? 'needs ATRIUM_URL, ATRIUM_READ_TOKEN, ATRIUM_RUN_TOKEN and ATRIUM_OTHER_TOKEN'
    : false;
const POLL_TIMEOUT_MS = Number(process.env.ATRIUM_POLL_TIMEOUT_MS ?? 30_000);
const SCAFFOLDER_BASE_URL = `${ATRIUM_URL}/api/scaffolder`;
const discoveryApi = { getBaseUrl: async () => SCAFFOLDER_BASE_URL };

const RUNNER = 'user:default/runner';
const OTHER_USER = 'user:default/other';
const HELLO = 'template:default/hello-service';

const identityOf = (userEntityRef) => ({
  getBackstageIdentity: async () => ({
    type: 'user',
    userEntityRef,
    ownershipEntityRefs: [userEntityRef],
  }),
});

/** A FetchApi that adds the token to every request, as the Backstage frontend's FetchApi does. */
const fetchApiWith = (token) => ({
  fetch: (input, init = {}) =>
    globalThis.fetch(input, {
      ...init,
      headers: { ...(init.headers ?? {}), Authorization: `Bearer ${token}` },
    }),
});

/** A client as a backend plugin builds it: plain fetch, tokens passed per request. */
const backend = (userEntityRef = RUNNER) =>
  new ScaffolderClient({
    discoveryApi,
    fetchApi: { fetch },
    identityApi: identityOf(userEntityRef),
    useLongPollingLogs: true,
  });

/** Rejects with a ResponseError (what every method but scaffold throws) of this status and name. */
async function rejectsWith(promise, status, name) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof ResponseError, `a ResponseError, not ${error}`);
    assert.equal(error.response.status, status);
    assert.equal(error.body.error.name, name);
    return true;
  });
}

/**
 * scaffold() is the one method that does not throw a ResponseError: it throws
 * `Error("Backend request failed, <status> <statusText> <body>")`. Checks the status and the error
 * body's name, and answers the body.
 */
async function scaffoldRejectsWith(promise, status, name) {
  let body;
  await assert.rejects(promise, (error) => {
    const match = /^Backend request failed, (\d{3}) [^{]*(\{.*)$/s.exec(error.message);
    assert.ok(match, `the client's error for a refused request, not ${error.message}`);
    assert.equal(Number(match[1]), status, error.message);
    body = JSON.parse(match[2]);
    assert.equal(body.error.name, name, error.message);
    return true;
  });
  return body;
}

/** Every event of a task through client.streamLogs (long polling, with `options`), to its completion. */
function collectLogs(client, taskId, options) {
  return new Promise((resolve, reject) => {
    const events = [];
    let subscription;
    const timer = setTimeout(() => {
      subscription?.unsubscribe();
      reject(new Error(`task ${taskId}: no completion within ${POLL_TIMEOUT_MS} ms; got ${JSON.stringify(events)}`));
    }, POLL_TIMEOUT_MS);
    subscription = client.streamLogs({ taskId }, options).subscribe({
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

const messages = (events) => events.filter((e) => e.type === 'log').map((e) => e.body.message);

describe('ScaffolderClient with API tokens', { skip }, () => {
  // The runner's task, for the tests after the one that creates it (tests run in order).
  let runnersTask;

  test('without a token every call is refused with 401', async () => {
    const client = backend();
    await rejectsWith(client.listActions(), 401, 'AuthenticationError');
    await rejectsWith(client.getTemplateParameterSchema(HELLO), 401, 'AuthenticationError');
    await rejectsWith(client.listTasks({ filterByOwnership: 'all' }), 401, 'AuthenticationError');
    await rejectsWith(client.getTask('00000000-0000-4000-8000-000000000000'), 401, 'AuthenticationError');
    await scaffoldRejectsWith(client.scaffold({ templateRef: HELLO, values: { name: 'anon' } }), 401, 'AuthenticationError');
    // A made-up token is as good as none.
    await rejectsWith(client.listActions({ token: 'atr_notarealtoken' }), 401, 'AuthenticationError');
    await scaffoldRejectsWith(
      client.scaffold({ templateRef: HELLO, values: { name: 'anon' } }, { token: 'atr_notarealtoken' }),
      401,
      'AuthenticationError',
    );
  });

  test('a read token lists the actions and reads a template\'s parameter schema, per request', async () => {
    const client = backend();
    const actions = await client.listActions({ token: READ });
    const ids = actions.map((a) => a.id);
    for (const id of ['debug:log', 'fetch:template']) {
      assert.ok(ids.includes(id), `${id} is listed (got ${ids.join(', ')})`);
    }
    const schema = await client.getTemplateParameterSchema(HELLO, { token: READ });
    assert.equal(schema.title, 'Hello service');
    assert.equal(schema.steps.length, 2);
    assert.deepEqual(schema.steps[0].schema.required, ['name']);
    // A short reference, as the frontend's template page passes it.
    const short = await client.getTemplateParameterSchema('hello-service', { token: READ });
    assert.equal(short.title, 'Hello service');
  });

  test('a read token cannot run a template: 403 NotAllowedError naming template:run', async () => {
    const body = await scaffoldRejectsWith(
      backend().scaffold({ templateRef: HELLO, values: { name: 'by-reader' } }, { token: READ }),
      403,
      'NotAllowedError',
    );
    assert.match(body.error.message, /template:run:default\/hello-service/);
  });

  test('a token with template:run:<template> runs it; the task and its log read back with the token', async () => {
    const client = backend(RUNNER);
    const { taskId } = await client.scaffold(
      { templateRef: HELLO, values: { name: 'svc-token' } },
      { token: RUN },
    );
    assert.equal(typeof taskId, 'string');
    runnersTask = taskId;

    const events = await collectLogs(client, taskId, { token: RUN });
    const completion = events.at(-1);
    assert.equal(completion.type, 'completion');
    assert.equal(completion.body.error, undefined, JSON.stringify(completion.body));
    assert.equal(completion.body.output.greeting, 'Hello svc-token');
    assert.ok(messages(events).includes('Hello svc-token'), JSON.stringify(messages(events)));
    for (const event of events) assert.equal(event.taskId, taskId);

    const task = await client.getTask(taskId, { token: RUN });
    assert.equal(task.status, 'completed');
    assert.equal(task.createdBy, RUNNER, 'the task is the token owner\'s');
    assert.equal(task.spec.user.ref, RUNNER);
    assert.equal(task.spec.templateInfo.entityRef, HELLO);

    const owned = await client.listTasks({ filterByOwnership: 'owned' }, { token: RUN });
    assert.deepEqual(owned.tasks.map((t) => t.id), [taskId]);
    assert.equal(owned.totalTasks, 1);
  });

  test('the same token cannot run a different template: 403, whether or not that template exists', async () => {
    const client = backend(RUNNER);
    const body = await scaffoldRejectsWith(
      client.scaffold({ templateRef: 'template:default/always-fails', values: {} }, { token: RUN }),
      403,
      'NotAllowedError',
    );
    assert.match(body.error.message, /template:run:default\/always-fails/);
    // Checked before the lookup: a template that is not there is refused the same way.
    await scaffoldRejectsWith(
      client.scaffold({ templateRef: 'template:default/no-such-template', values: {} }, { token: RUN }),
      403,
      'NotAllowedError',
    );
    // And nothing was created by the refusals.
    const all = await client.listTasks({ filterByOwnership: 'all' }, { token: RUN });
    assert.deepEqual(all.tasks.map((t) => t.id), [runnersTask]);
  });

  test("another user's token cannot see the runner's task: 404, as if it did not exist", async () => {
    assert.ok(runnersTask, 'the runner created a task');
    const client = backend(OTHER_USER);
    await rejectsWith(client.getTask(runnersTask, { token: OTHER }), 404, 'NotFoundError');
    await rejectsWith(client.cancelTask(runnersTask, { token: OTHER }), 404, 'NotFoundError');
    await rejectsWith(client.retry(runnersTask, { token: OTHER }), 404, 'NotFoundError');
    // The same answer as for a task that does not exist.
    await rejectsWith(client.getTask('00000000-0000-4000-8000-000000000000', { token: OTHER }), 404, 'NotFoundError');
    // Its list holds nothing of the runner's, even asked for them by name.
    const all = await client.listTasks({ filterByOwnership: 'all' }, { token: OTHER });
    assert.deepEqual(all, { tasks: [], totalTasks: 0 });
    const asRunner = await backend(RUNNER).listTasks({ filterByOwnership: 'owned' }, { token: OTHER });
    assert.deepEqual(asRunner, { tasks: [], totalTasks: 0 });
    // Nor its log. (The client's long poll retries a refused request forever, so the routes it
    // reads are asked directly here, with the header the client sends.)
    const headers = { Authorization: `Bearer ${OTHER}` };
    for (const route of ['events', 'eventstream']) {
      const response = await fetch(`${SCAFFOLDER_BASE_URL}/v2/tasks/${runnersTask}/${route}`, { headers });
      assert.equal(response.status, 404, route);
      assert.equal((await response.json()).error.name, 'NotFoundError', route);
    }
    // The runner still sees it, unchanged.
    const task = await backend(RUNNER).getTask(runnersTask, { token: RUN });
    assert.equal(task.status, 'completed');
  });

  test('a FetchApi that adds the token, as the Backstage frontend wires it', async () => {
    const frontend = new ScaffolderClient({
      discoveryApi,
      fetchApi: fetchApiWith(RUN),
      identityApi: identityOf(RUNNER),
      useLongPollingLogs: true,
    });
    const schema = await frontend.getTemplateParameterSchema(HELLO);
    assert.equal(schema.title, 'Hello service');
    const { taskId } = await frontend.scaffold({ templateRef: HELLO, values: { name: 'svc-frontend' } });
    const events = await collectLogs(frontend, taskId);
    assert.equal(events.at(-1).type, 'completion');
    assert.equal(events.at(-1).body.output.greeting, 'Hello svc-frontend');
    const task = await frontend.getTask(taskId);
    assert.equal(task.status, 'completed');
    assert.equal(task.createdBy, RUNNER);
    const owned = await frontend.listTasks({ filterByOwnership: 'owned' });
    assert.deepEqual(owned.tasks.map((t) => t.id).sort(), [runnersTask, taskId].sort());
    await scaffoldRejectsWith(
      frontend.scaffold({ templateRef: 'template:default/slow-steps', values: {} }),
      403,
      'NotAllowedError',
    );
    // Another user's frontend: the runner's tasks do not exist for it.
    const others = new ScaffolderClient({
      discoveryApi,
      fetchApi: fetchApiWith(OTHER),
      identityApi: identityOf(OTHER_USER),
      useLongPollingLogs: true,
    });
    await rejectsWith(others.getTask(taskId), 404, 'NotFoundError');
  });
});
