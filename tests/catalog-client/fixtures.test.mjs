// Offline self-check of the fixture catalog: needs no server.
//
// Runs every fixture entity through Backstage's own validation code from
// @backstage/catalog-model (the same entity policies and kind schemas the
// Backstage catalog applies after placeholder resolution), so that everything
// the compatibility suite treats as valid is valid by Backstage's rules, and
// invalid.yaml is invalid for exactly the reason the suite expects.
//
// The Model kind (atrium.dev/v1alpha1) is Atrium's own: Backstage has no kind
// schema for it, so it gets the generic entity policies plus a check of the
// fields the suite relies on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import {
  DefaultNamespaceEntityPolicy,
  EntityPolicies,
  FieldFormatEntityPolicy,
  NoForeignRootFieldsEntityPolicy,
  SchemaValidEntityPolicy,
  apiEntityV1alpha1Validator,
  componentEntityV1alpha1Validator,
  domainEntityV1alpha1Validator,
  groupEntityV1alpha1Validator,
  locationEntityV1alpha1Validator,
  parseEntityRef,
  resourceEntityV1alpha1Validator,
  stringifyEntityRef,
  systemEntityV1alpha1Validator,
  userEntityV1alpha1Validator,
} from '@backstage/catalog-model';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

// Backstage's default policy set (what `CatalogBuilder` installs).
const policy = EntityPolicies.allOf([
  new SchemaValidEntityPolicy(),
  new DefaultNamespaceEntityPolicy(),
  new NoForeignRootFieldsEntityPolicy(),
  new FieldFormatEntityPolicy(),
]);

const kindValidators = [
  apiEntityV1alpha1Validator,
  componentEntityV1alpha1Validator,
  domainEntityV1alpha1Validator,
  groupEntityV1alpha1Validator,
  locationEntityV1alpha1Validator,
  resourceEntityV1alpha1Validator,
  systemEntityV1alpha1Validator,
  userEntityV1alpha1Validator,
];

async function loadDocs(file) {
  const text = await readFile(path.join(FIXTURES, file), 'utf8');
  const docs = YAML.parseAllDocuments(text, { uniqueKeys: true });
  for (const doc of docs) {
    assert.deepEqual(doc.errors, [], `${file}: YAML errors`);
  }
  return docs.map(d => d.toJSON()).filter(Boolean);
}

// Resolves `$text: ./relative` placeholders the way the catalog is expected
// to (relative to the file that contains them).
async function resolvePlaceholders(value, file) {
  if (Array.isArray(value)) {
    return Promise.all(value.map(v => resolvePlaceholders(v, file)));
  }
  if (value && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === '$text') {
      return readFile(path.join(path.dirname(path.join(FIXTURES, file)), value.$text), 'utf8');
    }
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = await resolvePlaceholders(v, file);
    }
    return out;
  }
  return value;
}

async function validate(entity) {
  const enforced = await policy.enforce(structuredClone(entity));
  if (entity.apiVersion.startsWith('backstage.io/')) {
    let matched = false;
    for (const validator of kindValidators) {
      if (await validator.check(enforced)) {
        matched = true;
        break;
      }
    }
    assert.ok(matched, `no Backstage kind validator accepted ${stringifyEntityRef(entity)}`);
  }
  return enforced;
}

async function registeredFiles() {
  const [root] = await loadDocs('catalog.yaml');
  return root.spec.targets.map(t => path.normalize(t));
}

test('catalog.yaml is a single valid Location listing the other fixture files', async () => {
  const docs = await loadDocs('catalog.yaml');
  assert.equal(docs.length, 1);
  await validate(docs[0]);
  assert.equal(docs[0].kind, 'Location');
  const targets = await registeredFiles();
  assert.deepEqual(targets.sort(), ['apis.yaml', 'models.yaml', 'org.yaml', 'services.yaml']);
  assert.ok(!targets.includes('extra.yaml'), 'extra.yaml must not be registered by catalog.yaml');
  assert.ok(!targets.includes('invalid.yaml'), 'invalid.yaml must not be registered by catalog.yaml');
});

test('every registered fixture entity passes Backstage validation, with unique refs', async () => {
  const seen = new Set(['location:default/atrium-fixtures']);
  const kinds = {};
  for (const file of await registeredFiles()) {
    for (const raw of await loadDocs(file)) {
      const entity = await resolvePlaceholders(raw, file);
      await validate(entity);
      const ref = stringifyEntityRef(entity);
      assert.ok(!seen.has(ref), `duplicate entity ${ref}`);
      seen.add(ref);
      kinds[entity.kind] = (kinds[entity.kind] ?? 0) + 1;
    }
  }
  // The suite's hard-coded expectations depend on exactly this shape.
  assert.deepEqual(kinds, { Group: 2, User: 3, System: 1, Component: 4, Resource: 1, API: 2, Model: 1 });
  assert.equal(seen.size, 15);
});

test('every reference in the registered fixture resolves to a fixture entity', async () => {
  const entities = [];
  for (const file of await registeredFiles()) {
    entities.push(...(await loadDocs(file)));
  }
  const refs = new Set(entities.map(e => stringifyEntityRef(e)));
  const check = (value, defaultKind) => {
    const ref = stringifyEntityRef(parseEntityRef(value, { defaultKind, defaultNamespace: 'default' }));
    assert.ok(refs.has(ref), `dangling reference ${value} -> ${ref}`);
  };
  for (const e of entities) {
    const s = e.spec ?? {};
    if (s.owner) check(s.owner, 'Group');
    if (s.system) check(s.system, 'System');
    if (s.parent) check(s.parent, 'Group');
    for (const c of s.children ?? []) check(c, 'Group');
    for (const g of s.memberOf ?? []) check(g, 'Group');
    for (const a of s.providesApis ?? []) check(a, 'API');
    for (const a of s.consumesApis ?? []) check(a, 'API');
    for (const d of s.dependsOn ?? []) check(d, undefined);
  }
});

test('the Model fixture carries the fields the suite asserts on', async () => {
  const [model] = await loadDocs('models.yaml');
  await validate(model);
  assert.equal(model.apiVersion, 'atrium.dev/v1alpha1');
  assert.equal(model.kind, 'Model');
  assert.deepEqual(model.spec, {
    type: 'llm',
    owner: 'platform-team',
    lifecycle: 'experimental',
    versions: [{ name: 'v1', uri: 'hf://org/model' }],
  });
});

test('extra.yaml holds exactly one valid Component', async () => {
  const docs = await loadDocs('extra.yaml');
  assert.equal(docs.length, 1);
  await validate(docs[0]);
  assert.equal(stringifyEntityRef(docs[0]), 'component:default/compat-extra');
});

test('invalid.yaml is rejected by Backstage for its metadata.name, and for nothing else', async () => {
  const docs = await loadDocs('invalid.yaml');
  assert.equal(docs.length, 1);
  await assert.rejects(validate(docs[0]), err => {
    assert.match(err.message, /"metadata\.name" is not valid/);
    return true;
  });
  // With a valid name the same entity passes: the name is the only fault.
  const repaired = structuredClone(docs[0]);
  repaired.metadata.name = 'now-valid';
  await validate(repaired);
});
