%% A process that runs a fun of this module, started by hand (kv_ticker:start()). Loading
%% another kv_ticker leaves it on old code, and purging that old code kills it.
-module(kv_ticker).

-export([start/0, count/0]).

start() ->
    Pid = spawn(fun() -> loop(0) end),
    true = register(?MODULE, Pid),
    {ok, Pid}.

%% How many counts were asked before this one.
count() ->
    ?MODULE ! {count, self()},
    receive {count, Count} -> Count after 5000 -> timeout end.

%% Local calls only: the process stays in the code it was started with.
loop(Count) ->
    receive
        {count, From} ->
            From ! {count, Count},
            loop(Count + 1)
    end.
