defmodule Kvex.MixProject do
  use Mix.Project

  def project do
    [
      app: :kvex,
      version: "@VERSION@",
      elixir: "~> 1.14",
      deps: [],
      releases: [
        kvex: [include_erts: true, include_executables_for: [:unix], steps: [:assemble, :tar]]
      ]
    ]
  end

  def application do
    [mod: {Kvex.Application, []}, extra_applications: [:sasl]]
  end
end
