"use strict";
(function () {
  var h = window.hitl;
  var form = document.getElementById("submit-form");
  form.addEventListener("submit", async function (e) {
    e.preventDefault();
    var input = document.getElementById("input").value;
    var flow = document.getElementById("flow");
    var error = document.getElementById("submit-error");
    error.textContent = "";
    if (!input.trim()) { error.textContent = "Type some text to process first."; return; }
    try {
      var body = {input: input};
      if (flow) body.flow = flow.value;
      var task = await h.api("POST", "/api/v1/tasks", body);
      window.location.href = "/tasks/" + task.id;
    } catch (err) { error.textContent = err.message; }
  });
  async function load() {
    var rows = document.getElementById("task-rows");
    var data = await h.api("GET", "/api/v1/tasks?limit=20");
    rows.replaceChildren.apply(rows, data.data.map(function (t) {
      var link = h.el("a", {href: "/tasks/" + t.id, title: t.id}, [h.el("code", {text: h.shortId(t.id)})]);
      var input = h.show(t.input);
      return h.el("tr", {}, [
        h.el("td", {}, [link]),
        h.el("td", {text: input.length > 60 ? input.slice(0, 60) + "…" : input}),
        h.el("td", {}, [h.el("span", {cls: "badge " + t.status, text: t.status.replace(/_/g, " ")})]),
        h.el("td", {text: String(t.round)}),
        h.el("td", {text: h.when(t.created_at)}),
      ]);
    }));
  }
  var pending = null;
  h.onAnyEvent(function () { clearTimeout(pending); pending = setTimeout(load, 150); });
  load();
})();
