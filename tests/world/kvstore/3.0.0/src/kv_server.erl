%% kvstore's server, 3.0.0. State: #{db => Db, data => #{Key => {Value, WrittenAtMs}},
%% hits => N}, where hits counts the gets served since start or upgrade (memory only).
-module(kv_server).
-behaviour(gen_server).
-vsn("3.0.0").

-export([start_link/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2, code_change/3]).

-define(DB, kvstore_db).

start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

init([]) ->
    ok = kvstore_db:open(?DB),
    {ok, _Applied} = kv_migrate:migrate(?DB),
    {ok, #{db => ?DB, data => #{}, hits => 0}}.

handle_call({put, Key, Value}, _From, State = #{db := Db, data := Data}) ->
    Now = erlang:system_time(millisecond),
    Sql = "INSERT OR REPLACE INTO kv(key, value, updated_at) VALUES(?, ?, ?)",
    case kvstore_db:exec(Db, Sql, [Key, Value, Now]) of
        ok -> {reply, ok, State#{data := Data#{Key => {Value, Now}}}};
        Error -> {reply, Error, State}
    end;
handle_call({get, Key}, _From, State = #{db := Db, data := Data, hits := Hits}) ->
    Reply = case Data of
                #{Key := {Value, _WrittenAt}} -> {ok, Value};
                _ -> read(Db, Key)
            end,
    {reply, Reply, State#{hits := Hits + 1}};
handle_call(keys, _From, State = #{db := Db}) ->
    {ok, Rows} = kvstore_db:rows(Db, "SELECT key FROM kv ORDER BY key", []),
    {reply, [Key || {Key} <- Rows], State};
handle_call(memory_keys, _From, State = #{data := Data}) ->
    {reply, lists:sort(maps:keys(Data)), State};
handle_call(state_shape, _From, State = #{hits := _}) ->
    {reply, v3, State};
handle_call(hits, _From, State = #{hits := Hits}) ->
    {reply, Hits, State};
handle_call(health, _From, State = #{db := Db}) ->
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

%% Up from 2.0.0: the record becomes a map and hits starts at 0.
%% Down to 2.0.0 (runs in this code, before 2.0.0's is loaded): hits is dropped.
code_change({down, _ToVsn}, #{db := Db, data := Data}, _Extra) ->
    {ok, {state, Db, Data}};
code_change(_FromVsn, {state, Db, Data}, _Extra) ->
    {ok, #{db => Db, data => Data, hits => 0}}.

read(Db, Key) ->
    case kvstore_db:rows(Db, "SELECT value FROM kv WHERE key = ?", [Key]) of
        {ok, [{Value}]} -> {ok, Value};
        {ok, []} -> not_found
    end.
