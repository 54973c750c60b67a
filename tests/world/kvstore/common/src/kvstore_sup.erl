-module(kvstore_sup).
-behaviour(supervisor).

-export([start_link/0, init/1]).

start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

init([]) ->
    Server = #{id => kv_server,
               start => {kv_server, start_link, []},
               modules => [kv_server]},
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10}, [Server]}}.
