// Backstage's answers for template expressions, the reference Atrium's engine is compared with.
//
// Reads a JSON list of cases `{template, context, mode}` from stdin and prints a JSON list of
// answers, one per case, in order:
//
// - mode "text": `render` (file contents, paths): `{"ok": "<string>"}` or `{"error": "<message>"}`;
// - mode "cookiecutter": the same with fetch:template's `cookiecutterCompat: true` (`{{ }}`, and
//   `cookiecutter` bound to `context.values`);
// - mode "value": the scaffolder's `render` of a step input, the template output or `each`:
//   every string in the JSON tree `template` goes through `renderValue`; a string whose value is
//   undefined drops its key. `{"ok": <json>}`, `{"ok": null, "undefined": true}` when the whole value
//   is undefined, plus `"errors"` listing the strings that failed (Backstage keeps those strings
//   unrendered and goes on; Atrium stops with an error instead);
// - mode "condition": a step's `if`: `false` skips, a string is rendered like an input value and
//   judged with the runner's `isTruthy`, anything else runs. `{"ok": true|false}` (+ `"errors"`).
//
// The renderer is set up as Backstage's NunjucksWorkflowRunner sets it up (scaffolder-backend,
// src/scaffolder/tasks/NunjucksWorkflowRunner.ts): `allowRegexExecution: true` and the default
// filters of src/lib/templating/filters (parseRepoUrl, parseEntityRef, pick, projectSlug).

import { parseEntityRef } from '@backstage/catalog-model';
import lodash from 'lodash';
import { createTemplateRenderer } from 'nunjitsu';

// Backstage's parseRepoUrl (plugin-scaffolder-node, src/actions/util.ts) asks the configured SCM
// integrations which kind of host a URL names. There is no integrations config here: the kind
// comes from the host name, which is also what Atrium does (see server/src/scaffolder/expr).
function hostKind(host) {
  if (host.includes('bitbucket')) return 'bitbucket';
  if (host === 'dev.azure.com' || host.endsWith('.visualstudio.com')) return 'azure';
  if (host.includes('gitlab')) return 'gitlab';
  if (host.includes('gitea')) return 'gitea';
  if (host.includes('gerrit')) return 'gerrit';
  return 'github';
}

function parseRepoUrl(repoUrl) {
  let parsed;
  try {
    parsed = new URL(`https://${repoUrl}`);
  } catch (error) {
    throw new Error(`Invalid repo URL passed to publisher, got ${repoUrl}, ${error}`);
  }
  const host = parsed.host;
  const required = (...params) => {
    for (const param of params) {
      if (!parsed.searchParams.get(param)) {
        throw new Error(
          `Invalid repo URL passed to publisher: ${parsed.toString()}, missing ${param}`,
        );
      }
    }
  };
  const get = param =>
    parsed.searchParams.has(param)
      ? lodash.trim(parsed.searchParams.get(param), '/')
      : undefined;
  const [owner, organization, workspace, project, repo] = [
    'owner',
    'organization',
    'workspace',
    'project',
    'repo',
  ].map(get);
  switch (hostKind(host)) {
    case 'bitbucket':
      if (host === 'www.bitbucket.org') required('workspace');
      required('project', 'repo');
      break;
    case 'azure':
      required('project', 'repo');
      break;
    case 'gitlab':
      if (!project) required('owner', 'repo');
      break;
    case 'gitea':
    case 'gerrit':
      required('repo');
      break;
    default:
      required('repo', 'owner');
  }
  // Undefined members are left out, as they are once the value crosses a JSON boundary.
  return JSON.parse(
    JSON.stringify({ host, owner, repo, organization, workspace, project }),
  );
}

const filters = {
  parseRepoUrl: url => parseRepoUrl(url),
  parseEntityRef: (ref, context) => ({ ...parseEntityRef(ref, context) }),
  pick: (obj, key) => lodash.get(obj, key),
  projectSlug: url => {
    const { owner, repo } = parseRepoUrl(url);
    return `${owner}/${repo}`;
  },
};

const renderer = createTemplateRenderer({ allowRegexExecution: true, filters });
const compat = createTemplateRenderer({
  allowRegexExecution: true,
  cookiecutterCompat: true,
  filters,
});

const isTruthy = value => (Array.isArray(value) ? value.length > 0 : !!value);

// NunjucksWorkflowRunner.render: a JSON round trip whose reviver renders every string.
function renderTree(input, context, errors) {
  return JSON.parse(JSON.stringify(input), (_key, value) => {
    if (typeof value !== 'string') return value;
    try {
      return renderer.renderValue(value, context);
    } catch (error) {
      errors.push(`${value}: ${error.message}`);
      return value;
    }
  });
}

function answer({ template, context, mode }) {
  try {
    switch (mode) {
      case 'text':
        return { ok: renderer.render(template, context) };
      case 'cookiecutter':
        return {
          ok: compat.render(template, { ...context, cookiecutter: context.values }),
        };
      case 'value': {
        const errors = [];
        const ok = renderTree(template, context, errors);
        return ok === undefined
          ? { ok: null, undefined: true, errors }
          : { ok, errors };
      }
      case 'condition': {
        const errors = [];
        if (template === false) return { ok: false, errors };
        if (typeof template !== 'string') return { ok: true, errors };
        return { ok: isTruthy(renderTree(template, context, errors)), errors };
      }
      default:
        return { error: `unknown mode ${mode}` };
    }
  } catch (error) {
    return { error: String(error.message) };
  }
}

let input = '';
process.stdin.setEncoding('utf8');
for await (const chunk of process.stdin) input += chunk;
process.stdout.write(JSON.stringify(JSON.parse(input).map(answer)));
