"""flowbench: Flowcraft for Python benchmarked side by side with plain asyncio and its peers.

Layout:

- :mod:`flowbench.workloads` — the workload registry (what is measured, at which sizes).
- :mod:`flowbench.runtimes` — one adapter module per Python runtime (floor, Flowcraft,
  PocketFlow, LangGraph) implementing workloads; ``benchmarks/ts/worker.mjs`` does the
  same for node (plain JS floor and Flowcraft TS).
- :mod:`flowbench.worker` — the long-lived worker process of one runtime.
- :mod:`flowbench.orchestrate` — runs every runtime in its own process, round-robin.
- :mod:`flowbench.report` — turns a results file into the markdown report.
"""
