%% kvstore's server, 1.0.0. State: {state, Db, #{Key => Value}}.
-module(kv_server).
-behaviour(gen_server).
-vsn("1.0.0").

-export([start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2, code_change/3]).

-define(DB, kvstore_db).

start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

init([]) ->
    ok = kvstore_db:open(?DB),
    {ok, {state, ?DB, #{}}}.

handle_call({put, Key, Value}, _From, State = {state, Db, Data}) ->
    Sql = "INSERT OR REPLACE INTO kv(key, value) VALUES(?, ?)",
    case kvstore_db:exec(Db, Sql, [Key, Value]) of
        ok -> {reply, ok, {state, Db, Data#{Key => Value}}};
        Error -> {reply, Error, State}
    end;
handle_call({get, Key}, _From, State = {state, Db, Data}) ->
    case Data of
        #{Key := Value} -> {reply, {ok, Value}, State};
        _ -> {reply, read(Db, Key), State}
    end;
handle_call(keys, _From, State = {state, Db, _}) ->
    {ok, Rows} = kvstore_db:rows(Db, "SELECT key FROM kv ORDER BY key", []),
    {reply, [Key || {Key} <- Rows], State};
handle_call(memory_keys, _From, State = {state, _, Data}) ->
    {reply, lists:sort(maps:keys(Data)), State};
handle_call(state_shape, _From, State = {state, _, _}) ->
    {reply, v1, State};
handle_call(health, _From, State = {state, Db, _}) ->
    {ok, _} = kvstore_db:rows(Db, "SELECT 1", []),
    {reply, ok, State};
handle_call(_Other, _From, State) ->
    {reply, {error, unknown_call}, State}.

handle_cast(_Msg, State) ->
    {noreply, State}.

handle_info(_Msg, State) ->
    {noreply, State}.

terminate(_Reason, _State) ->
    ok.

%% Nothing older than 1.0.0 exists; downgrades from 2.0.0 convert in 2.0.0's code.
code_change(_OldVsn, State, _Extra) ->
    {ok, State}.

read(Db, Key) ->
    case kvstore_db:rows(Db, "SELECT value FROM kv WHERE key = ?", [Key]) of
        {ok, [{Value}]} -> {ok, Value};
        {ok, []} -> not_found
    end.
