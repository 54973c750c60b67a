defmodule Kvex.Server do
  @moduledoc "0.2.0. State: {:v2, %{key => value}, writes}: it counts the writes."
  use GenServer
  @vsn '0.2.0'

  def start_link(_), do: GenServer.start_link(__MODULE__, [], name: __MODULE__)

  @impl true
  def init([]), do: {:ok, {:v2, %{}, 0}}

  @impl true
  def handle_call({:put, key, value}, _from, {:v2, data, writes}),
    do: {:reply, :ok, {:v2, Map.put(data, key, value), writes + 1}}

  def handle_call({:get, key}, _from, state = {:v2, data, _}), do: {:reply, Map.fetch(data, key), state}
  def handle_call(:keys, _from, state = {:v2, data, _}), do: {:reply, Enum.sort(Map.keys(data)), state}
  def handle_call(:state_shape, _from, state), do: {:reply, :v2, state}
  def handle_call(:health, _from, state), do: {:reply, :ok, state}

  # Up from 0.1.0: start counting with the keys already written. Down: drop the count.
  @impl true
  def code_change({:down, _vsn}, {:v2, data, _writes}, _extra), do: {:ok, {:v1, data}}
  def code_change(_old_vsn, {:v1, data}, _extra), do: {:ok, {:v2, data, map_size(data)}}
end
