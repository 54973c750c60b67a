defmodule Kvex.Application do
  use Application

  def start(_type, _args) do
    Supervisor.start_link([Kvex.Server], strategy: :one_for_one, name: Kvex.Supervisor)
  end
end
