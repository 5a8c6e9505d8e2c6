// The task page: built entirely from the task's event stream, so a reload replays the same
// history and a second tab shows the same thing.
"use strict";
(function () {
  var h = window.hitl;
  var root = document.getElementById("task");
  var taskId = root.dataset.taskId;
  var $ = function (id) { return document.getElementById(id); };
  var FINAL = {"task.completed": 1, "task.failed": 1, "task.cancelled": 1};
  var WORDS = {approve: "Approved", reject: "Rejected", edit: "Edited and approved"};
  var state = {status: null, rounds: [], open: null, source: null, finished: false};

  function setStatus(status, node) {
    state.status = status;
    var badge = $("status");
    badge.textContent = status.replace(/_/g, " ");
    badge.className = "badge " + status;
    $("node").textContent = node ? "node: " + node : "";
    $("cancel").hidden = !(status === "queued" || status === "running" || status === "waiting_for_review");
  }

  function timeline(type, data) {
    var text = type;
    if (data.node) text += " · " + data.node;
    if (data.action && type === "node.finished") text += " → " + data.action;
    if (type === "review.requested") text += " · round " + data.round;
    if (type === "review.decided") text += " · " + data.decision + (data.comment ? ": “" + data.comment + "”" : "") + (data.decided_by ? " by " + data.decided_by : "") + (data.on_behalf_of ? " for " + data.on_behalf_of : "");
    if (type === "task.failed") text += " · " + data.error;
    $("timeline").appendChild(h.el("li", {cls: "ev " + type.replace(".", "-"), text: text}));
  }

  function renderRounds() {
    var list = $("rounds");
    list.replaceChildren.apply(list, state.rounds.map(function (r, i) {
      var parts = [h.el("h3", {text: "Round " + r.round})];
      parts.push(h.el("pre", {cls: "output", "data-testid": "round-output", text: h.show(r.output)}));
      if (i > 0) {
        var prev = state.rounds[i - 1];
        var diff = window.renderDiff(window.wordDiff(h.show(prev.output), h.show(r.output)));
        diff.setAttribute("data-testid", "round-diff");
        parts.push(h.el("div", {cls: "diff-box"}, [h.el("p", {cls: "muted", text: "Changes since round " + prev.round + ":"}), diff]));
      }
      var verdict;
      if (r.decision) {
        var text = (WORDS[r.decision] || r.decision) + (r.decided_by ? " by " + r.decided_by : "") +
          (r.on_behalf_of ? " for " + r.on_behalf_of : "");
        verdict = h.el("p", {cls: "decision " + r.decision, "data-testid": "round-decision"}, [
          h.el("strong", {text: text}),
          r.comment ? h.el("span", {cls: "comment", text: " — “" + r.comment + "”"}) : null,
        ]);
        if (r.decision === "edit") parts.push(h.el("pre", {cls: "output edited", text: h.show(r.edited_output)}));
      } else if (r.cancelled) {
        verdict = h.el("p", {cls: "decision muted", text: "cancelled"});
      } else if (r.expired) {
        verdict = h.el("p", {cls: "decision muted", text: "no decision by its deadline"});
      } else {
        verdict = h.el("p", {cls: "decision muted", text: "waiting for a decision"});
      }
      parts.push(verdict);
      return h.el("li", {cls: "round", "data-testid": "round"}, parts);
    }));
  }

  function showReview(round) {
    state.open = round;
    var box = $("review");
    if (!round) { box.hidden = true; return; }
    $("review-round").textContent = round.round;
    $("review-prompt").textContent = round.prompt || "";
    $("review-deadline").textContent = h.deadline(round.deadline, round.on_deadline);
    $("review-deadline").hidden = !round.deadline;
    var changes = $("review-changes"), index = state.rounds.indexOf(round);
    changes.replaceChildren();
    changes.hidden = index < 1;
    if (index >= 1) {
      var prev = state.rounds[index - 1];
      changes.appendChild(h.el("p", {cls: "muted", text: "What changed since round " + prev.round +
        (prev.comment ? " (you asked: “" + prev.comment + "”)" : "") + ":"}));
      changes.appendChild(window.renderDiff(window.wordDiff(h.show(prev.output), h.show(round.output))));
    }
    $("edit").value = h.show(round.output);
    $("comment").value = "";
    $("review-error").textContent = "";
    $("approve-edited").hidden = true;
    $("approve").hidden = round.decisions.indexOf("approve") < 0;
    $("reject").hidden = round.decisions.indexOf("reject") < 0;
    box.hidden = false;
  }

  function apply(type, data) {
    timeline(type, data);
    if (type === "task.created") { $("input").textContent = h.show(data.input); setStatus("queued"); }
    else if (type === "task.retried") {
      setStatus("queued");
      $("result-card").hidden = true;  // the failure is history now
    }
    else if (type === "task.running" || type === "node.started") setStatus("running", data.node);
    else if (type === "review.requested") {
      var round = {round: data.round, review_id: data.review_id, output: data.output,
                   decisions: data.decisions || [], prompt: data.prompt,
                   deadline: data.deadline, on_deadline: data.on_deadline};
      state.rounds.push(round);
      setStatus("waiting_for_review", data.node);
      showReview(round);
    } else if (type === "review.decided") {
      state.rounds.forEach(function (r) {
        if (r.review_id === data.review_id) {
          r.decision = data.decision; r.comment = data.comment; r.decided_by = data.decided_by; r.on_behalf_of = data.on_behalf_of;
          r.edited_output = data.edited_output;
        }
      });
      if (state.open && state.open.review_id === data.review_id) showReview(null);
      setStatus("running", "");
    } else if (type === "task.completed") {
      setStatus("completed");
      $("result").textContent = h.show(data.result);
      $("result-card").hidden = false;
    } else if (type === "task.failed") {
      setStatus("failed");
      state.rounds.forEach(function (r) {
        if (r.review_id === data.review_id && !r.decision) r.expired = true;
      });
      if (state.open && state.open.review_id === data.review_id) showReview(null);
      $("result").textContent = "Failed: " + data.error;
      $("result-card").hidden = false;
    } else if (type === "task.cancelled") {
      setStatus("cancelled");
      state.rounds.forEach(function (r) { if (!r.decision) r.cancelled = true; });
      showReview(null);
    }
    renderRounds();
  }

  async function decide(decision) {
    var round = state.open;
    if (!round) return;
    var comment = $("comment").value.trim();
    var body = {decision: decision, comment: comment || null};
    if (decision === "reject" && !comment) {
      $("review-error").textContent = "Write a comment so the next revision knows what to change.";
      $("comment").focus();
      return;
    }
    if (decision === "edit") {
      var text = $("edit").value;
      if (typeof round.output === "string") body.edited_output = text;
      else {
        try { body.edited_output = JSON.parse(text); }
        catch (e) { $("review-error").textContent = "The edited output must stay valid JSON: " + e.message; return; }
      }
    }
    var buttons = document.querySelectorAll("#review button");
    buttons.forEach(function (b) { b.disabled = true; });
    try {
      await h.api("POST", "/api/v1/reviews/" + round.review_id + "/decision", body);
      $("review-error").textContent = "";
    } catch (err) {
      $("review-error").textContent = err.message;
    } finally {
      buttons.forEach(function (b) { b.disabled = false; });
    }
  }

  $("approve").onclick = function () { decide("approve"); };
  $("approve-edited").onclick = function () { decide("edit"); };
  $("reject").onclick = function () { decide("reject"); };
  $("edit").addEventListener("input", function () {
    var changed = state.open && $("edit").value !== h.show(state.open.output);
    $("approve-edited").hidden = !changed || state.open.decisions.indexOf("edit") < 0;
  });
  $("cancel").onclick = async function () {
    try { await h.api("POST", "/api/v1/tasks/" + taskId + "/cancel", undefined); }
    catch (err) { $("live").textContent = err.message; }
  };

  var TYPES = ["task.created", "task.running", "node.started", "node.finished", "review.requested",
               "review.decided", "task.completed", "task.failed", "task.cancelled", "task.retried"];
  function connect() {
    var source = new EventSource("/api/v1/tasks/" + taskId + "/events");
    state.source = source;
    source.onopen = function () { $("live").textContent = "● live"; };
    // The server ends the stream after the task's final event. A final event in the replay
    // may be history (a failed task that was retried): the page is finished only when the
    // stream ends right after one.
    source.onerror = function () {
      if (state.finished) { source.close(); $("live").textContent = "finished"; }
      else if (source.readyState !== EventSource.CLOSED) $("live").textContent = "reconnecting…";
    };
    TYPES.forEach(function (type) {
      source.addEventListener(type, function (ev) {
        state.finished = !!FINAL[type];
        apply(type, JSON.parse(ev.data));
      });
    });
  }

  h.api("GET", "/api/v1/tasks/" + taskId).then(connect, function (err) {
    setStatus("unknown");
    $("live").textContent = err.status === 404 ? "No such task." : err.message;
  });
})();
