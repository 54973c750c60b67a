%% Schema migrations of kvstore, first shipped in 2.0.0. Each one is applied
%% once, in a transaction, and recorded in schema_migrations. 1.0.0 keeps
%% working on the migrated schema (it never names the new column).
-module(kv_migrate).

-export([run/0, migrate/1, fail/0]).

-define(MIGRATIONS,
        [{add_kv_updated_at, ["ALTER TABLE kv ADD COLUMN updated_at INTEGER"]}]).

%% Opens the database itself, so it works in a VM where kvstore is loaded but
%% not started. {ok, Applied}: the names applied by this call ([] when none left).
run() ->
    ok = kvstore_db:open(kv_migrate_db),
    try
        migrate(kv_migrate_db)
    after
        kvstore_db:close(kv_migrate_db)
    end.

migrate(Db) ->
    ok = kvstore_db:exec(Db, "CREATE TABLE IF NOT EXISTS schema_migrations("
                             "name TEXT PRIMARY KEY, applied_at_ms INTEGER)", []),
    {ok, Rows} = kvstore_db:rows(Db, "SELECT name FROM schema_migrations", []),
    Done = [binary_to_atom(Name) || {Name} <- Rows],
    Pending = [Migration || Migration = {Name, _} <- ?MIGRATIONS, not lists:member(Name, Done)],
    {ok, [apply_migration(Db, Name, Statements) || {Name, Statements} <- Pending]}.

%% A migration that always fails, for tests of failing migrations.
fail() ->
    error({migration_failed, deliberately}).

apply_migration(Db, Name, Statements) ->
    ok = kvstore_db:exec(Db, "BEGIN", []),
    Record = {"INSERT INTO schema_migrations(name, applied_at_ms) VALUES(?, ?)",
              [atom_to_binary(Name), erlang:system_time(millisecond)]},
    Results = [kvstore_db:exec(Db, Sql, Params)
               || {Sql, Params} <- [{Sql, []} || Sql <- Statements] ++ [Record]],
    case [Error || Error = {error, _} <- Results] of
        [] ->
            ok = kvstore_db:exec(Db, "COMMIT", []),
            Name;
        [{error, Reason} | _] ->
            kvstore_db:exec(Db, "ROLLBACK", []),
            error({migration_failed, Name, Reason})
    end.
