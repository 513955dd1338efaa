// Worker process of the node runtimes: "js" (the plain JS floor) and "flowcraft-ts"
// (npm flowcraft@1.0.0). Same JSON-lines protocol as benchmarks/flowbench/worker.py:
//   node worker.mjs RUNTIME             serve {"op": "hello" | "run" | "quit"} on stdin
//   node --expose-gc worker.mjs RUNTIME --memory K    one W5 sample, then exit
// The workloads mirror the Python ones exactly (see benchmarks/flowbench/runtimes/).
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const noop = async () => undefined

// ---- descriptions (same as flowbench/workloads.py) ------------------------------------------
const DAG_WIDTH = 50
function chainDescription(size) {
  const nodes = []
  const edges = []
  for (let i = 0; i < size; i++) nodes.push({ id: `n${i}`, type: 'noop' })
  for (let i = 0; i < size - 1; i++) edges.push({ source: `n${i}`, target: `n${i + 1}` })
  return { nodes, edges }
}
function dagDescription(size, width = DAG_WIDTH) {
  const nodes = []
  const edges = []
  for (let i = 0; i < size; i++) nodes.push({ id: `n${i}`, type: 'noop' })
  for (let i = 0; i < size; i++) {
    const layer = Math.floor(i / width)
    const j = i % width
    const base = (layer + 1) * width
    for (const k of new Set([j, (j + 1) % width])) {
      const target = base + k
      if (target < size) edges.push({ source: `n${i}`, target: `n${target}` })
    }
  }
  return { nodes, edges }
}
const items = (size) => Array.from({ length: size }, (_, i) => ({ i }))

// ---- the plain JS floor -----------------------------------------------------------------------
function buildPlain(description) {
  const nodes = new Map()
  const successors = new Map()
  const predecessors = new Map()
  for (const node of description.nodes) {
    nodes.set(node.id, node)
    successors.set(node.id, new Map())
    predecessors.set(node.id, 0)
  }
  for (const edge of description.edges) {
    if (!nodes.has(edge.source) || !nodes.has(edge.target)) throw new Error(`dangling edge ${edge.source}`)
    const byAction = successors.get(edge.source)
    const action = edge.action ?? 'default'
    if (!byAction.has(action)) byAction.set(action, [])
    byAction.get(action).push(edge.target)
    predecessors.set(edge.target, predecessors.get(edge.target) + 1)
  }
  const starts = [...predecessors].filter(([, count]) => count === 0).map(([id]) => id)
  return { nodes, successors, predecessors, starts }
}

const floorFanout = (size) => async () => {
  await Promise.all(Array.from({ length: size }, () => sleep(10)))
  await noop()
}
const floor = {
  version: async () => `node ${process.version}`,
  timed: {
    'w1.chain': (size) => {
      const steps = Array(size).fill(noop)
      return async () => {
        for (const step of steps) await step()
      }
    },
    'w1.loop': (size) => async () => {
      let count = 0
      while (true) {
        await noop()
        count += 1
        if (count >= size) break
      }
    },
    'w2.fanout': floorFanout,
    'w3.batch.noop': (size) => {
      const list = items(size)
      return async () => {
        await Promise.all(list.map(async () => undefined))
      }
    },
    'w3.batch.sleep': (size) => {
      const list = items(size)
      return async () => {
        await Promise.all(list.map(() => sleep(1)))
      }
    },
    'w4.chain': (size) => {
      const description = chainDescription(size)
      return async () => buildPlain(description)
    },
    'w4.dag': (size) => {
      const description = dagDescription(size)
      return async () => buildPlain(description)
    },
  },
  memory: floorFanout,
  unsupported: {},
  importSource: null,
  helloSource: "const hello = async () => console.log('hello')\nawait hello()\n",
}

// ---- Flowcraft TS 1.0.0 -----------------------------------------------------------------------
async function flowcraftRuntime() {
  const fc = await import('flowcraft')
  const { Flow, Node, ParallelFlow, ParallelBatchFlow, GraphBuilder, TypedContext } = fc
  const pkg = (await import('flowcraft/package.json', { with: { type: 'json' } }).catch(() => null))?.default

  class Noop extends Node {
    async exec() {
      return undefined
    }
  }
  class Counted extends Node {
    constructor(limit, box) {
      super()
      this.limit = limit
      this.box = box
    }
    async exec() {
      return undefined
    }
    async post() {
      this.box[0] += 1
      return this.box[0] < this.limit ? 'again' : undefined
    }
  }
  class SleepBranch extends Node {
    async exec() {
      await sleep(10)
    }
  }
  class SleepItem extends Node {
    async exec() {
      await sleep(1)
    }
  }
  class Items extends ParallelBatchFlow {
    constructor(nodeToRun, list) {
      super()
      this.nodeToRun = nodeToRun
      this.list = list
    }
    async prep() {
      return this.list
    }
  }
  const noopMiddleware = (args, next) => next(args)
  const runner = (flow) => () => flow.run(new TypedContext())

  const chain = (middleware) => (size) => {
    const flow = new Flow()
    let current = flow.start(new Noop())
    for (let i = 1; i < size; i++) current = current.next(new Noop())
    for (let i = 0; i < middleware; i++) flow.use(noopMiddleware)
    return runner(flow)
  }
  // Flowcraft TS 1.x runs an in-graph fan-in node after the *first* branch reaches it, so
  // its join is the parallel block's successor (runs once, after all branches).
  const fanout = (size) => {
    const branches = Array.from({ length: size }, () => new SleepBranch())
    const flow = new Flow()
    flow.start(new ParallelFlow(branches)).next(new Noop())
    return runner(flow)
  }
  const batch = (Work, subflow) => (size) => {
    const node = subflow ? new Flow(new Work()) : new Work()
    return runner(new Flow(new Items(node, items(size))))
  }
  const builder = (describe) => (size) => {
    const description = describe(size)
    const graphBuilder = new GraphBuilder({ noop: Noop })
    return async () => graphBuilder.buildBlueprint(description)
  }
  return {
    version: async () => `flowcraft ${pkg?.version ?? '1.0.0'} on node ${process.version}`,
    timed: {
      'w1.chain': chain(0),
      'w1.chain.mw1': chain(1),
      'w1.chain.mw3': chain(3),
      'w1.loop': (size) => {
        const box = [0]
        const node = new Counted(size, box)
        node.next(node, 'again')
        const flow = new Flow(node)
        return async () => {
          box[0] = 0
          await flow.run(new TypedContext())
        }
      },
      'w2.fanout': fanout,
      'w2.block': fanout,
      'w3.batch.noop': batch(Noop, false),
      'w3.batch.sleep': batch(SleepItem, false),
      'w3.subflow.noop': batch(Noop, true),
      'w3.subflow.sleep': batch(SleepItem, true),
      'w4.chain': builder(chainDescription),
      'w4.dag': builder(dagDescription),
    },
    memory: fanout,
    unsupported: {},
    importSource:
      "const started = performance.now()\nawait import('flowcraft')\nconsole.log((performance.now() - started) / 1000)\n",
    helloSource: [
      "import { Flow, Node, TypedContext } from 'flowcraft'",
      "class Hello extends Node { async exec() { console.log('hello') } }",
      'await new Flow(new Hello()).run(new TypedContext())',
    ].join('\n'),
  }
}

// ---- the worker -------------------------------------------------------------------------------
async function loadRuntime(name) {
  if (name === 'js') return floor
  if (name === 'flowcraft-ts') return flowcraftRuntime()
  throw new Error(`unknown runtime ${name}`)
}

async function timeOnce(fn) {
  if (globalThis.gc) globalThis.gc()
  const started = performance.now()
  await fn()
  return (performance.now() - started) / 1000
}

async function measureMemory(runtime, size) {
  if (!globalThis.gc) return { ok: false, error: 'run node with --expose-gc' }
  globalThis.gc()
  const baseline = process.memoryUsage().heapUsed
  const run = runtime.memory(size)
  globalThis.gc()
  const afterBuild = process.memoryUsage().heapUsed
  // No peak tracker in V8: sample the heap while every branch is asleep (at 5 ms of 10 ms).
  let peak = afterBuild
  const probe = setTimeout(() => {
    peak = Math.max(peak, process.memoryUsage().heapUsed)
  }, 5)
  await run()
  clearTimeout(probe)
  peak = Math.max(peak, process.memoryUsage().heapUsed)
  return { ok: true, graph: afterBuild - baseline, run: peak - afterBuild, total: peak - baseline }
}

async function main() {
  const [name, flag, value] = process.argv.slice(2)
  let runtime = null
  let importError = null
  try {
    runtime = await loadRuntime(name)
  } catch (error) {
    importError = `cannot load: ${error.message}`
  }
  if (flag === '--memory') {
    const result = runtime ? await measureMemory(runtime, Number(value)) : { ok: false, error: importError }
    process.stdout.write(`${JSON.stringify(result)}\n`)
    return
  }
  const cases = new Map()
  const reply = (object) => process.stdout.write(`${JSON.stringify(object)}\n`)
  const lines = createInterface({ input: process.stdin, terminal: false })
  for await (const line of lines) {
    if (!line.trim()) continue
    const command = JSON.parse(line)
    if (command.op === 'quit') break
    if (!runtime) {
      reply({ ok: false, error: importError })
      continue
    }
    if (command.op === 'hello') {
      reply({
        ok: true,
        version: await runtime.version(),
        implements: Object.keys(runtime.timed).sort(),
        unsupported: runtime.unsupported,
        import_argv: runtime.importSource ? [process.execPath, '--input-type=module', '-e', runtime.importSource] : null,
        hello_argv: [process.execPath, '--input-type=module', '-e', runtime.helloSource],
      })
      continue
    }
    if (command.op !== 'run') {
      reply({ ok: false, error: `unknown op ${command.op}` })
      continue
    }
    try {
      const { workload, size } = command
      const reps = command.reps ?? 3
      const budget = command.budget ?? 0.3
      const factory = runtime.timed[workload]
      if (!factory) {
        reply({ ok: false, na: runtime.unsupported[workload] ?? 'not implemented' })
        continue
      }
      const key = `${workload}@${size}`
      const times = []
      let fn = cases.get(key)
      if (!fn) {
        // one built case at a time, as the Python workers hold them (see flowbench/worker.py)
        cases.clear()
        globalThis.gc?.()
        fn = factory(size)
        cases.set(key, fn)
        if (command.warmup ?? true) {
          const first = await timeOnce(fn)
          if (first > 1.0) times.push(first)
        }
      }
      let spent = times.reduce((a, b) => a + b, 0)
      while (times.length < reps && (times.length === 0 || spent < budget)) {
        const elapsed = await timeOnce(fn)
        times.push(elapsed)
        spent += elapsed
      }
      reply({ ok: true, times })
    } catch (error) {
      reply({ ok: false, error: `${error.name}: ${error.message}` })
    }
  }
  lines.close()
  process.exit(0)
}

await main()
