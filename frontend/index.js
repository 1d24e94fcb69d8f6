// The cnnviz tab. TensorBoard loads this module in an iframe whose base URL is
// data/plugin/cnnviz/ and calls render() once. Untrusted names are set with textContent.
// (The full dashboard is its own piece of work; this lists what is logged.)

const SNIPPET = `from tb_cnnviz import CNNViz
cb = CNNViz("logs/run1", samples=x_val[:8], labels=y_val[:8])
model.fit(x, y, epochs=10, callbacks=[cb])`;

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function renderRuns(root, runs) {
  if (runs.length === 0) {
    root.append(element("h2", "No cnnviz data yet"),
      element("p", "Log some with the CNNViz Keras callback, then reload:"),
      element("pre", SNIPPET));
    return;
  }
  const list = element("ul", undefined, "runs");
  for (const run of runs) {
    const item = element("li");
    item.append(element("strong", run.run),
      element("span", ` — ${run.samples} probes, ${run.layers.length} layers, ` +
        `${run.steps.train.length} train / ${run.steps.eval.length} eval steps`));
    list.append(item);
  }
  root.append(element("h2", "Runs with cnnviz data"), list);
}

export async function render() {
  const root = element("div", undefined, "cnnviz");
  document.body.append(root);
  root.append(element("p", "Loading…", "loading"));
  try {
    const response = await fetch("./runs");
    const body = await response.json();
    root.replaceChildren();
    if (!response.ok) throw new Error(body.error || response.statusText);
    renderRuns(root, body.runs);
  } catch (error) {
    root.replaceChildren(element("p", `Could not load cnnviz data: ${error.message}`, "error"));
  }
}
