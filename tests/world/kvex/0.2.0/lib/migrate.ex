defmodule Kvex.Migrate do
  @moduledoc "0.2.0's migration, run with 0.2.0's code before the upgrade; it has nothing to migrate."
  def run, do: :ok
end
