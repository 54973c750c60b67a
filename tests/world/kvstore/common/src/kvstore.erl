%% The public API of kvstore. Keys and values are binaries.
%%
%% Every put goes to SQLite and to kv_server's in-memory map. A started server
%% begins with an EMPTY map (it is not warmed from the database), so
%% memory_keys/0 tells whether in-memory state survived: a hot upgrade keeps
%% it, a crash or a restart of the node empties it, while get/1 and keys/0
%% still see everything through the database.
-module(kvstore).

-compile({no_auto_import, [put/2, get/1]}).
-export([put/2, get/1, keys/0, memory_keys/0, version/0, state_shape/0,
         hits/0, health/0, unhealthy/0, server_pid/0]).

put(Key, Value) when is_binary(Key), is_binary(Value) ->
    gen_server:call(kv_server, {put, Key, Value}).

%% {ok, Value} | not_found
get(Key) when is_binary(Key) ->
    gen_server:call(kv_server, {get, Key}).

%% All keys in the database, sorted.
keys() ->
    gen_server:call(kv_server, keys).

%% Keys held in kv_server's memory, sorted.
memory_keys() ->
    gen_server:call(kv_server, memory_keys).

%% The vsn of the loaded kv_server code, e.g. "2.0.0".
version() ->
    {vsn, Vsn} = lists:keyfind(vsn, 1, kv_server:module_info(attributes)),
    Vsn.

%% v1 | v2 | v3: the shape of kv_server's state.
state_shape() ->
    gen_server:call(kv_server, state_shape).

%% Gets served since start or upgrade (3.0.0 on); {error, unknown_call} before.
hits() ->
    gen_server:call(kv_server, hits).

health() ->
    gen_server:call(kv_server, health).

%% A health check that always fails, for tests of failing health checks.
unhealthy() ->
    {error, not_ready}.

server_pid() ->
    whereis(kv_server).
