// Builds blueprints with Flowcraft TS 1.0.0 for the interchange cases of
// tests/graph/test_ts_interchange.py and writes ts_interchange.json next to this script:
// fields the builder does not interpret (a visual editor's position/label, explicit
// "action": ""/null, "config": null, unusual key orders) and predecessorCountMap's key
// order. The Python tests compare the JSON text byte for byte; CI never needs npm.
//
//   cd /tmp && mkdir -p tsfc && cd tsfc && npm init -y && npm install flowcraft@1.0.0
//   node tests/graph/ts_interchange.mjs /tmp/tsfc
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const installDir = process.argv[2] ?? '/tmp/tsfc'
const entry = join(installDir, 'node_modules', 'flowcraft', 'dist', 'index.js')
const { GraphBuilder, Node } = await import(pathToFileURL(entry).href)

class Noop extends Node {}

const cases = [
  {
    name: 'ui_fields',
    graph: {
      nodes: [
        { id: 'a', type: 'task', position: { x: 0, y: 0 }, label: 'Load', data: { k: 1 } },
        { type: 'task', id: 'b', config: null },
        { id: 'c', type: 'task', data: {}, config: { maxRetries: 2 }, selected: false },
        { id: 'd', type: 'task', position: { x: 5, y: 5 } },
        { id: 'e', type: 'task', config: { wait: 10 }, data: { z: null } },
        { id: 'f', type: 'task' },
      ],
      edges: [
        { id: 'e1', source: 'a', target: 'b', label: 'first', action: '' },
        { source: 'b', target: 'c', action: null, animated: true },
        { target: 'd', source: 'c', id: null },
        { source: 'c', target: 'e', label: 'replaced by the parallel container' },
        { source: 'd', target: 'f', action: 'x', label: 'X', style: { stroke: 'red' } },
        { source: 'e', target: 'f' },
      ],
    },
  },
  {
    name: 'ui_fields_conditional_join',
    conditionalNodeTypes: ['check'],
    graph: {
      nodes: [
        { id: 'check', type: 'check', position: { x: 1, y: 1 } },
        { id: 'b', type: 'task' },
        { id: 'c', type: 'task' },
        { id: 'd', type: 'task', label: 'Converge' },
      ],
      edges: [
        { source: 'check', target: 'b', action: 'yes', label: 'Yes' },
        { source: 'check', target: 'c', action: 'no', label: 'No' },
        { source: 'b', target: 'd', label: 'rerouted to the join' },
        { source: 'c', target: 'd', id: 'c-d' },
      ],
    },
  },
  {
    name: 'ui_fields_sub_workflow',
    subWorkflowNodeTypes: ['sub'],
    subWorkflows: {
      inner: {
        nodes: [
          { id: 'x', type: 'task', position: { x: 2, y: 2 } },
          { id: 'y', type: 'decide', label: 'Decide', config: null },
        ],
        edges: [{ source: 'x', target: 'y', label: 'inner edge', action: '' }],
      },
    },
    graph: {
      nodes: [
        { id: 'start', type: 'task', label: 'Start' },
        { id: 's', type: 'sub', position: { x: 3, y: 3 }, data: { workflowId: 'inner', inputs: { i: 'start' } } },
        { id: 'ok', type: 'task' },
      ],
      edges: [
        { source: 'start', target: 's', label: 'in' },
        { source: 's', target: 'ok', action: 'approved', label: 'out of the sub-workflow' },
      ],
    },
  },
  {
    name: 'count_map_key_order',
    graph: {
      nodes: [
        { id: 'd', type: 'task' },
        { id: 'c', type: 'task' },
        { id: 'b', type: 'task' },
        { id: 'a', type: 'task' },
      ],
      edges: [
        { source: 'a', target: 'c' },
        { source: 'a', target: 'b', action: 'go' },
        { source: 'c', target: 'd' },
        { source: 'b', target: 'd' },
      ],
    },
  },
  {
    name: 'literal_default_is_an_ordinary_action',
    graph: {
      nodes: [
        { id: 'a', type: 'task' },
        { id: 'b', type: 'task' },
        { id: 'c', type: 'task' },
        { id: 'd', type: 'task' },
      ],
      edges: [
        { source: 'a', target: 'b', action: 'default' },
        { source: 'a', target: 'c', action: 'default' },
        { source: 'a', target: 'd' },
      ],
    },
  },
  {
    name: 'list_inputs_reprefixed',
    subWorkflowNodeTypes: ['sub'],
    subWorkflows: {
      summarize: {
        nodes: [
          { id: 'fetch', type: 'task' },
          { id: 'llm', type: 'task', data: { inputs: ['fetch', 'literal', ['fetch', 'other']] } },
        ],
        edges: [{ source: 'fetch', target: 'llm' }],
      },
    },
    graph: {
      nodes: [
        { id: 'load', type: 'task', data: { inputs: ['load'] } },
        { id: 'sum', type: 'sub', data: { workflowId: 'summarize', inputs: { doc: 'load' } } },
      ],
      edges: [{ source: 'load', target: 'sum' }],
    },
  },
  // Documented differences (docs/declarative.md): TS builds these, we refuse them.
  {
    name: 'diff_list_inputs_on_a_sub_workflow_node',
    subWorkflowNodeTypes: ['sub'],
    subWorkflows: { w: { nodes: [{ id: 'x', type: 'task' }], edges: [] } },
    graph: {
      nodes: [
        { id: 'f', type: 'task' },
        { id: 's', type: 'sub', data: { workflowId: 'w', inputs: ['f', 'k'] } },
      ],
      edges: [{ source: 'f', target: 's' }],
    },
  },
  {
    name: 'diff_sub_workflow_id_collision',
    subWorkflowNodeTypes: ['sub'],
    subWorkflows: { w: { nodes: [{ id: 'x', type: 'task' }], edges: [] } },
    graph: {
      nodes: [
        { id: 'start', type: 'task' },
        { id: 'a-b', type: 'sub', data: { workflowId: 'w' } },
        { id: 'ab', type: 'sub', data: { workflowId: 'w' } },
        { id: 'end', type: 'task' },
      ],
      edges: [{ source: 'start', target: 'a-b' }, { source: 'a-b', target: 'ab' }, { source: 'ab', target: 'end' }],
    },
  },
  {
    name: 'diff_generated_id_collision',
    graph: {
      nodes: [
        { id: 'a', type: 'task' },
        { id: 'b', type: 'task' },
        { id: 'c', type: 'task' },
        { id: 'a__parallel_container', type: 'task' },
      ],
      edges: [{ source: 'a', target: 'b' }, { source: 'a', target: 'c' }],
    },
  },
]

const out = []
for (const c of cases) {
  const registry = { task: Noop, check: Noop, decide: Noop }
  const subWorkflows = c.subWorkflows ?? {}
  const builder = new GraphBuilder(registry, {}, {
    subWorkflowNodeTypes: c.subWorkflowNodeTypes ?? [],
    conditionalNodeTypes: c.conditionalNodeTypes ?? [],
    subWorkflowResolver: { getGraph: (id) => (subWorkflows[id] ? JSON.parse(JSON.stringify(subWorkflows[id])) : undefined) },
  })
  const record = { ...c }
  record.blueprint = JSON.parse(JSON.stringify(builder.buildBlueprint(JSON.parse(JSON.stringify(c.graph))).blueprint))
  out.push(record)
}
writeFileSync(join(here, 'ts_interchange.json'), JSON.stringify({ generator: 'flowcraft@1.0.0', cases: out }, null, 2) + '\n')
console.log(`wrote ${out.length} cases`)
