defmodule Kvex do
  @moduledoc "kvex's API: an in-memory key-value store whose server state changes shape between versions."

  def put(key, value), do: GenServer.call(Kvex.Server, {:put, key, value})
  def get(key), do: GenServer.call(Kvex.Server, {:get, key})
  def keys, do: GenServer.call(Kvex.Server, :keys)
  def state_shape, do: GenServer.call(Kvex.Server, :state_shape)
  def health, do: GenServer.call(Kvex.Server, :health)
  def server_pid, do: Process.whereis(Kvex.Server)

  @doc "The version of the server code that runs, as a charlist (from its vsn attribute)."
  def version, do: Kvex.Server.module_info(:attributes)[:vsn]
end
