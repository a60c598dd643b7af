-- Git repositories as locations.
--
-- A `git` location is a repository (target `<remote>` or `<remote>#<branch>`); processing fetches it and
-- declares one `git-file` child per catalog file found (target `<remote>#<branch or HEAD>:<path>`). The
-- repository decides when a file is re-read, so each row remembers the version it last saw.

alter table location add column source_version text;
comment on column location.source_version is 'git: the commit last fetched. git-file: the tree id of the file''s directory at that commit, written by the repository''s processing; a child is re-read only when it changes. Null for other types.';
comment on column location.type is '`file`, `url`, `git` (a repository) or `git-file` (a catalog file inside one).';
