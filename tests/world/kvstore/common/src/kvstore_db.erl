%% The SQLite file behind kvstore, shared by kv_server and kv_migrate.
-module(kvstore_db).

-export([path/0, open/1, close/1, exec/3, rows/3]).

%% Application env db_path, else OS env KVSTORE_DB, else <release root>/data/kvstore.db.
path() ->
    case application:get_env(kvstore, db_path) of
        {ok, Path} ->
            Path;
        undefined ->
            case os:getenv("KVSTORE_DB") of
                false -> filename:join([code:root_dir(), "data", "kvstore.db"]);
                Path -> Path
            end
    end.

%% Starts a sqlite3 connection process registered as Name, linked to the caller,
%% and makes sure the 1.0.0 table exists.
open(Name) ->
    Path = path(),
    ok = filelib:ensure_dir(Path),
    case sqlite3:open(Name, [{file, Path}]) of
        {ok, _Pid} -> ok;
        {error, {already_started, _Pid}} -> ok
    end,
    ok = exec(Name, "CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value TEXT)", []).

close(Name) ->
    sqlite3:close(Name).

%% A statement that returns no rows: ok or {error, Reason}.
exec(Db, Sql, Params) ->
    case sqlite3:sql_exec(Db, Sql, Params) of
        ok -> ok;
        {rowid, _} -> ok;
        {error, _, Message} -> {error, Message};
        {error, Reason} -> {error, Reason}
    end.

%% A query: {ok, Rows} (a list of tuples) or {error, Reason}.
rows(Db, Sql, Params) ->
    case sqlite3:sql_exec(Db, Sql, Params) of
        [{columns, _}, {rows, Rows}] -> {ok, Rows};
        {error, _, Message} -> {error, Message};
        {error, Reason} -> {error, Reason};
        [{columns, _}, {rows, _}, {error, _, Message}] -> {error, Message}
    end.
