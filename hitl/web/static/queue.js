"use strict";
(function () {
  var h = window.hitl;
  async function load() {
    var list = document.getElementById("queue");
    var problem = document.getElementById("queue-error");
    var data;
    try { data = await h.api("GET", "/api/v1/reviews?status=open&limit=200"); }
    catch (err) { problem.textContent = err.message; problem.hidden = false; return; }
    problem.hidden = true;
    document.getElementById("empty").hidden = data.count > 0;
    list.replaceChildren.apply(list, data.data.map(function (r) {
      var output = h.show(r.output);
      return h.el("li", {cls: "queue-item", "data-review-id": r.id, "data-task-id": r.task_id}, [
        h.el("a", {href: "/tasks/" + r.task_id, text: "Task " + r.task_id.slice(0, 8) + " · round " + r.round}),
        h.el("span", {cls: "muted", text: " waiting since " + h.when(r.created_at)}),
        r.deadline ? h.el("p", {cls: "deadline", "data-testid": "queue-deadline", text: h.deadline(r.deadline, r.on_deadline)}) : null,
        h.el("pre", {text: output.length > 400 ? output.slice(0, 400) + "…" : output}),
      ]);
    }));
  }
  var pending = null;
  h.onAnyEvent(function (type) {
    if (type === "open" || type.indexOf("review.") === 0 || type === "task.cancelled" || type === "task.failed") {
      clearTimeout(pending); pending = setTimeout(load, 100);
    }
  });
  load();
})();
