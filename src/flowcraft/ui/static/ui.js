// flowcraft ui: the run page. Draws the graph with the vendored Mermaid, colours its
// nodes, and follows the run live over server-sent events. Everything the server sends
// is set as text (textContent), except the side panel, which is HTML the server
// rendered with every value escaped.
(function () {
  "use strict";
  const dataElement = document.getElementById("run-data");
  if (!dataElement) return;
  const data = JSON.parse(dataElement.textContent);
  const STATES = ["running", "done", "failed", "skipped", "retrying", "waiting", "sleeping", "resumed"];
  let nodes = data.nodes || {};
  let waits = (data.waits || []).join(",");
  let state = data.state;

  function nodeElement(svg, uid) {
    return svg.querySelector('[data-id="' + uid + '"]') || svg.querySelector('g.node[id*="-' + uid + '-"]');
  }

  function colour() {
    const graph = document.getElementById("graph");
    const svg = graph && graph.querySelector("svg");
    if (!svg) return;
    for (const [nodeId, uid] of Object.entries(data.ids || {})) {
      const element = nodeElement(svg, uid);
      if (!element) continue;
      for (const name of STATES) element.classList.remove("st-" + name);
      const current = nodes[nodeId];
      if (current) element.classList.add("st-" + current);
      element.setAttribute("data-node", nodeId);
      element.setAttribute("data-state", current || "");
    }
  }

  function addRows(rows) {
    const body = document.querySelector("#timeline tbody");
    if (!body) return;
    for (const row of rows) {
      const tr = document.createElement("tr");
      tr.className = "new";
      tr.setAttribute("data-kind", row.kind);
      for (const text of [Number(row.at).toFixed(3), row.kind, row.node, row.detail]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }

  function setState(next) {
    const badge = document.getElementById("run-state");
    if (!badge) return;
    badge.textContent = next;
    badge.className = "badge st-" + next;
    badge.setAttribute("data-state", next);
  }

  async function reloadPanel() {
    const response = await fetch(data.panel, { credentials: "same-origin", headers: { accept: "text/html" } });
    if (!response.ok) return;
    const panel = document.getElementById("panel");
    panel.innerHTML = await response.text();  // server-rendered, every value escaped
    guardForms(panel);
  }

  function guardForms(root) {
    // One submit per form: the buttons are disabled once it is sent (the server's
    // idempotency key makes a second one harmless anyway).
    for (const form of root.querySelectorAll("form")) {
      form.addEventListener("submit", function () {
        setTimeout(function () { for (const b of form.querySelectorAll("button")) b.disabled = true; }, 0);
      });
    }
  }

  function follow() {
    if (!window.EventSource) return;
    const source = new EventSource(data.stream + "?after=" + encodeURIComponent(data.after));
    source.addEventListener("update", function (message) {
      const update = JSON.parse(message.data);
      nodes = update.nodes;
      colour();
      addRows(update.rows);
      const nextWaits = (update.waits || []).join(",");
      if (update.state !== state || nextWaits !== waits) {
        state = update.state;
        waits = nextWaits;
        setState(state);
        reloadPanel();
      }
      document.body.setAttribute("data-live", update.final ? "ended" : "following");
      if (update.final) source.close();
    });
    source.addEventListener("gone", function (message) {
      const update = JSON.parse(message.data);
      let problem = document.getElementById("problem");
      if (!problem) {
        problem = document.createElement("p");
        problem.id = "problem";
        problem.className = "problem";
        document.querySelector("h1").after(problem);
      }
      problem.textContent = update.message;
      source.close();
    });
  }

  async function draw() {
    const graph = document.getElementById("graph");
    if (graph && window.mermaid) {
      window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict", flowchart: { htmlLabels: false } });
      try {
        await window.mermaid.run({ nodes: [graph] });
        graph.setAttribute("data-drawn", "true");
      } catch (error) {
        graph.setAttribute("data-drawn", "failed");
      }
      colour();
    }
  }

  guardForms(document);
  draw().then(follow);
})();
