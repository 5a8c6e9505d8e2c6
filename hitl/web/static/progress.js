// The live draft on the task page: what the running node reports as it works (its
// `node.progress` events: a line saying where it is, the text it streams, the tokens it
// used), shown as it comes. Built from the task's own event stream, as task.js is, so a reload
// replays the same history. Nothing shows for a task whose nodes report nothing.
"use strict";
(function () {
  var h = window.hitl;
  var root = document.getElementById("task");
  if (!root || !window.EventSource) return;
  var taskId = root.dataset.taskId;
  var FINAL = {"task.completed": 1, "task.failed": 1, "task.cancelled": 1};
  var state = {node: null, text: "", writing: false, finished: false, ui: null};

  function number(n) { return typeof n === "number" ? n.toLocaleString() : "?"; }

  function build() {
    if (state.ui) return state.ui;
    var sheet = h.el("link", {rel: "stylesheet", href: "/static/progress.css"});
    document.head.appendChild(sheet);
    var ui = {
      node: h.el("span", {cls: "muted", "data-testid": "progress-node"}),
      badge: h.el("span", {cls: "badge", "data-testid": "progress-state"}),
      line: h.el("p", {cls: "muted", "data-testid": "progress-message", "aria-live": "polite"}),
      text: h.el("pre", {cls: "output", "data-testid": "progress-text"}),
      usage: h.el("p", {cls: "muted usage", "data-testid": "progress-usage", hidden: ""}),
    };
    ui.card = h.el("section", {cls: "card live-draft", "data-testid": "progress"}, [
      h.el("div", {cls: "row"}, [h.el("h2", {text: "Live draft"}), ui.node, ui.badge]),
      ui.line, ui.text, ui.usage,
    ]);
    var before = document.getElementById("review");
    if (before && before.parentNode) before.parentNode.insertBefore(ui.card, before);
    else root.appendChild(ui.card);
    state.ui = ui;
    return ui;
  }

  function render() {
    var ui = state.ui;
    if (!ui) return;
    ui.node.textContent = state.node ? "node: " + state.node : "";
    ui.badge.textContent = state.writing ? "writing…" : "done";
    ui.badge.className = "badge " + (state.writing ? "running" : "completed");
    ui.card.classList.toggle("writing", state.writing);
    var follow = ui.text.scrollTop + ui.text.clientHeight >= ui.text.scrollHeight - 4;
    ui.text.textContent = state.text;
    if (follow) ui.text.scrollTop = ui.text.scrollHeight;
  }

  function showUsage(usage, total) {
    var ui = build();
    if (!usage && !total) return;
    var parts = [];
    if (usage) {
      parts.push("Tokens: " + number(usage.prompt_tokens) + " prompt + " +
                 number(usage.completion_tokens) + " completion = " + number(usage.total_tokens));
    } else {
      parts.push("Tokens: not reported by the model");
    }
    if (total && total.calls > 1) {
      parts.push("this task so far: " + number(total.total_tokens) + " over " + total.calls + " calls");
    }
    ui.usage.textContent = parts.join(" · ");
    ui.usage.hidden = false;
  }

  function apply(type, data) {
    if (type === "node.started") {
      // A node starts (again, after a crash, a rejection or a retry): its text starts afresh.
      state.node = data.node;
      state.text = "";
      state.writing = true;
    } else if (type === "node.progress") {
      build();
      if (data.node !== state.node) { state.node = data.node; state.text = ""; }
      state.writing = true;
      if (data.reset) state.text = "";
      if (typeof data.delta === "string") state.text += data.delta;
      if (typeof data.message === "string") state.ui.line.textContent = data.message;
      if ("usage" in data || "usage_total" in data) showUsage(data.usage, data.usage_total);
    } else if (type === "node.finished" || FINAL[type] || type === "review.requested") {
      state.writing = false;
    }
    render();
  }

  // The task page's one stream (task.js) hands every event on.
  document.addEventListener("hitl:task-event", function (ev) {
    var type = ev.detail.type;
    state.finished = !!FINAL[type];
    apply(type, ev.detail.data);
  });
})();
