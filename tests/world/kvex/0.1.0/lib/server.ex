defmodule Kvex.Server do
  @moduledoc "0.1.0. State: {:v1, %{key => value}}."
  use GenServer
  @vsn '0.1.0'

  def start_link(_), do: GenServer.start_link(__MODULE__, [], name: __MODULE__)

  @impl true
  def init([]), do: {:ok, {:v1, %{}}}

  @impl true
  def handle_call({:put, key, value}, _from, {:v1, data}), do: {:reply, :ok, {:v1, Map.put(data, key, value)}}
  def handle_call({:get, key}, _from, state = {:v1, data}), do: {:reply, Map.fetch(data, key), state}
  def handle_call(:keys, _from, state = {:v1, data}), do: {:reply, Enum.sort(Map.keys(data)), state}
  def handle_call(:state_shape, _from, state), do: {:reply, :v1, state}
  def handle_call(:health, _from, state), do: {:reply, :ok, state}

  # Nothing older than 0.1.0 exists; 0.2.0's code converts on the way down.
  @impl true
  def code_change(_old_vsn, state, _extra), do: {:ok, state}
end
