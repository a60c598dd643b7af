-- Deployments: every apply to a cluster is a record (a revision of one deployment target), with what
-- was applied, by whom, from which task, and its health over time. Rollback re-applies an older
-- revision's objects as a new revision.

create table deployment (
    id uuid primary key,
    name text not null,
    cluster text not null,
    environment text not null,
    namespace text not null,
    revision integer not null,
    entity_ref text,
    kubernetes_id text not null,
    template_ref text,
    task_id uuid references scaffolder_task (id) on delete set null,
    parameters jsonb not null default '{}',
    objects jsonb not null,
    created_by text not null,
    created_at timestamptz not null default now(),
    status text not null default 'applied'
        check (status in ('applied', 'failed')),
    health text not null default 'Unknown',
    health_message text not null default '',
    health_checked_at timestamptz,
    rollback_of uuid references deployment (id) on delete set null,
    error text
);
comment on table deployment is 'One apply of a set of objects to a cluster namespace: a revision of the deployment target (cluster, namespace, name). Written by kube:apply / deploy:model steps and by rollback; health columns by kube:wait and the deployments page.';
comment on column deployment.name is 'The deployment target''s name, also the atrium.dev/deployment label on every object it applied (stable across revisions, so re-applying the same objects changes nothing).';
comment on column deployment.revision is 'Counts applies to (cluster, namespace, name) from 1.';
comment on column deployment.entity_ref is 'The catalog entity the objects belong to (their backstage.io/kubernetes-id), when known.';
comment on column deployment.objects is 'The objects as sent to the server-side apply (after labels were added): what a rollback re-applies.';
comment on column deployment.parameters is 'The task''s parameters (values), secrets never.';
comment on column deployment.created_by is 'Entity ref of the user (or agent) whose task applied it.';
comment on column deployment.health is 'Argo CD health of the applied objects at health_checked_at: Healthy, Progressing, Degraded, Suspended, Missing, Unknown.';
comment on column deployment.rollback_of is 'The revision whose objects this revision re-applied.';

create unique index deployment_target_revision_idx on deployment (cluster, namespace, name, revision);
create index deployment_created_at_idx on deployment (created_at desc, id);
create index deployment_entity_ref_idx on deployment (entity_ref, created_at desc);

create table deployment_health (
    id bigserial primary key,
    deployment_id uuid not null references deployment (id) on delete cascade,
    health text not null,
    message text not null default '',
    observed_at timestamptz not null default now()
);
comment on table deployment_health is 'Health of a deployment over time: one row each time the observed health changes.';
create index deployment_health_deployment_id_idx on deployment_health (deployment_id, id);

-- Approvals: an environment may require one before the real apply. The step waits on the row; a member
-- of the owning group other than the requester decides.
create table deployment_approval (
    id uuid primary key,
    task_id uuid references scaffolder_task (id) on delete set null,
    name text not null,
    cluster text not null,
    environment text not null,
    namespace text not null,
    requested_by text not null,
    approver_group text not null,
    planned jsonb not null,
    status text not null default 'pending'
        check (status in ('pending', 'approved', 'denied', 'expired')),
    decided_by text,
    comment text not null default '',
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    decided_at timestamptz
);
comment on table deployment_approval is 'A deployment waiting for (or given) approval. Written by the deploy step (pending, expired) and by an approver through the API or page (approved, denied).';
comment on column deployment_approval.planned is 'The objects as the cluster''s dry run answered them: what the approver sees and approves.';
comment on column deployment_approval.approver_group is 'Entity ref of the group whose members (other than requested_by) may decide: the owner of the deployed entity, else of the template.';
create index deployment_approval_status_idx on deployment_approval (status, created_at);

alter table deployment add column approval_id uuid references deployment_approval (id) on delete set null;
comment on column deployment.approval_id is 'The approval the apply waited for, in environments that require one.';
