// The task page: built entirely from the task's event stream, so a reload replays the same
// history and a second tab shows the same thing. The review form works from the keyboard
// (a, r, e, Ctrl+Enter), keeps unsent drafts (drafts.js), and, when the page was opened from
// the review queue, opens the next review once the person has decided.
"use strict";
(function () {
  var h = window.hitl;
  var root = document.getElementById("task");
  var taskId = root.dataset.taskId;
  var $ = function (id) { return document.getElementById(id); };
  var FINAL = {"task.completed": 1, "task.failed": 1, "task.cancelled": 1};
  var WORDS = {approve: "Approved", reject: "Rejected", edit: "Edited and approved"};
  var VERBS = {approve: "approved", reject: "rejected", edit: "edited and approved"};
  var CHOICES = {approve: "Approve", reject: "Reject with comment", edit: "Approve my edit"};
  var TO = {approve: "approve", reject: "reject", edit: "approve an edit"};
  // What the review API may say of a round beyond its event (newer servers say more).
  var DETAILS = ["round", "content_hash", "dangerous", "comment_required", "assignees", "claim",
                 "claimed_by", "flow", "input"];
  var QUEUE_KEY = "hitl.queue";  // sessionStorage: the task this tab opened from the queue
  var state = {status: null, rounds: [], open: null, source: null, finished: false,
               choice: null, sending: null, known: {}, kept: null};

  function session(key, value) {
    try {
      if (value === undefined) return window.sessionStorage.getItem(key);
      window.sessionStorage.setItem(key, value);
    } catch (e) { return null; }
    return value;
  }
  var fromQueue = session(QUEUE_KEY) === taskId;

  function setStatus(status, node) {
    state.status = status;
    var badge = $("status");
    badge.textContent = status.replace(/_/g, " ");
    badge.className = "badge " + status;
    $("node").textContent = node ? "node: " + node : "";
    $("actions").hidden = !(status === "queued" || status === "running" || status === "waiting_for_review");
  }

  function timeline(type, data) {
    var text = type;
    if (data.node) text += " · " + data.node;
    if (data.action && type === "node.finished") text += " → " + data.action;
    if (type === "review.requested") text += " · round " + data.round;
    if (type === "review.decided") text += " · " + data.decision + (data.comment ? ": “" + data.comment + "”" : "") + (data.decided_by ? " by " + data.decided_by : "") + (data.on_behalf_of ? " for " + data.on_behalf_of : "");
    if (type === "task.failed") text += " · " + data.error;
    if (type === "task.cancelled" && data.reason) text += " · “" + data.reason + "”";
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

  // --- the review form ---------------------------------------------------------------------

  function allows(decision) { return !!state.open && state.open.decisions.indexOf(decision) >= 0; }
  function original() { return state.open ? h.show(state.open.output) : ""; }
  function edited() { return !!state.open && $("edit").value !== original(); }
  // The decisions that need a comment: those the review names, and always a rejection (the
  // next revision is told what to change).
  function commentRequired(round) {
    var named = round.comment_required || [];
    return ["approve", "edit", "reject"].filter(function (d) {
      return round.decisions.indexOf(d) >= 0 && (d === "reject" || named.indexOf(d) >= 0);
    });
  }
  function needsComment(round, decision) { return commentRequired(round).indexOf(decision) >= 0; }

  // What the review API says of a round (once): its round and content hash to send back, the
  // decisions that need a comment or a confirmation.
  function details(round) {
    if (!round.details) {
      var known = state.known[round.review_id];
      round.details = (known ? Promise.resolve(known) : h.api("GET", "/api/v1/reviews/" + round.review_id))
        .then(function (info) {
          DETAILS.forEach(function (k) { if (info[k] !== undefined && info[k] !== null) round[k] = info[k]; });
          if (state.open === round) describe(round);
          return round;
        }, function () { return round; });
    }
    return round.details;
  }

  // The labels that depend on what the review asks, and who else is reviewing it.
  function describe(round) {
    var holder = h.claimHolder(round), me = h.me().name;
    $("review-claim").hidden = !holder || !me || holder === me;  // !me: no sign-in, one user
    $("review-claim").textContent = holder ? holder + " is reviewing this now: a decision of yours is refused until their claim ends." : "";
    var needs = commentRequired(round);
    $("comment-label").textContent = needs.length === 1 && needs[0] === "reject"
      ? "Comment (required to reject: tell the next revision what to change)"
      : needs.length ? "Comment (required to " + needs.map(function (d) { return TO[d]; }).join(" or ") + ")"
      : "Comment (optional)";
  }

  function choose(decision) {
    state.choice = decision;
    ["approve", "approve-edited", "reject"].forEach(function (id) { $(id).classList.remove("chosen"); });
    var button = decision === "edit" ? "approve-edited" : decision;
    if (decision) $(button).classList.add("chosen");
    $("choice").textContent = decision ? "Ctrl+Enter sends: " + CHOICES[decision] : "";
  }

  // The edit trap: once the output differs from what was shown, "Approve" (which would send
  // the original) is off and "Approve my edit" is the only approve; the diff shows the edit.
  function updateEdit() {
    var changed = edited();
    $("approve").disabled = changed || !!state.sending;
    $("approve").title = changed ? "You changed the output: use “Approve my edit”, or put the text back" : "";
    $("approve-edited").hidden = !changed || !allows("edit");
    $("edit-hint").hidden = !changed;
    $("edit-hint").textContent = allows("edit")
      ? "You changed the output, so “Approve” is off: it would drop your edit. “Approve my edit” sends your version; put the text back to approve the original."
      : "This review does not take edits: put the output back to approve it.";
    var box = $("edit-diff");
    box.hidden = !changed;
    box.replaceChildren();
    if (changed) {
      box.appendChild(h.el("p", {cls: "muted", text: "Your edit, against the output you were shown:"}));
      box.appendChild(window.renderDiff(window.wordDiff(original(), $("edit").value)));
    }
    if (state.choice === "approve" && changed) choose(allows("edit") ? "edit" : null);
  }

  function saveDraft() {
    var round = state.open;
    if (!round) return;
    var comment = $("comment").value;
    window.drafts.save(round.review_id, {comment: comment.trim() ? comment : "",
                                         edit: edited() ? $("edit").value : null,
                                         round: round.round, task: taskId});
  }

  function showReview(round) {
    state.open = round;
    var box = $("review");
    choose(null);
    if (!round) { box.hidden = true; return; }
    $("review-round").textContent = round.round;
    $("review-prompt").textContent = round.prompt || "";
    var deadline = $("review-deadline");
    deadline.replaceChildren(h.deadline(round.deadline, round.on_deadline));
    if (round.deadline) {
      deadline.append(" · ", h.el("span", {cls: "countdown", "data-testid": "review-countdown",
                                           "data-until": String(round.deadline), text: h.left(round.deadline)}));
    }
    deadline.hidden = !round.deadline;
    var changes = $("review-changes"), index = state.rounds.indexOf(round);
    changes.replaceChildren();
    changes.hidden = index < 1;
    if (index >= 1) {
      var prev = state.rounds[index - 1];
      changes.appendChild(h.el("p", {cls: "muted", text: "What changed since round " + prev.round +
        (prev.comment ? " (you asked: “" + prev.comment + "”)" : "") + ":"}));
      changes.appendChild(window.renderDiff(window.wordDiff(h.show(prev.output), h.show(round.output))));
    }
    var draft = window.drafts.load(round.review_id);
    $("edit").value = draft && typeof draft.edit === "string" ? draft.edit : h.show(round.output);
    $("comment").value = draft && draft.comment ? draft.comment : "";
    $("draft-restored").hidden = !draft;
    $("draft-restored").textContent = draft ? "Your unsent draft from " + new Date(draft.saved_at).toLocaleString() + " is back." : "";
    $("review-error").textContent = "";
    $("review-stale").hidden = true;
    $("approve").hidden = round.decisions.indexOf("approve") < 0;
    $("reject").hidden = round.decisions.indexOf("reject") < 0;
    describe(round);
    updateEdit();
    box.hidden = false;
    details(round);
  }

  // The round's draft was not sent and now cannot be: say why, and keep the text on show.
  function keepDraft(round, why) {
    var draft = window.drafts.load(round.review_id);
    if (!draft) return;
    state.kept = round.review_id;
    $("kept-why").textContent = why + " Your unsent draft for round " + round.round + " is kept below: copy what you need.";
    var text = $("kept-text");
    text.replaceChildren();
    if (draft.comment) text.appendChild(h.el("div", {}, [h.el("h3", {text: "Your comment"}), h.el("pre", {"data-testid": "kept-comment", text: draft.comment})]));
    if (typeof draft.edit === "string") text.appendChild(h.el("div", {}, [h.el("h3", {text: "Your edit"}), h.el("pre", {"data-testid": "kept-edit", text: draft.edit})]));
    $("kept").hidden = false;
  }

  function decidedBy(data) {
    if (data.decided_by === "deadline") return "The deadline " + (VERBS[data.decision] || data.decision) + " this review.";
    var who = data.decided_by || "Someone";
    return who + (data.on_behalf_of ? " (for " + data.on_behalf_of + ")" : "") + " " +
      (VERBS[data.decision] || data.decision) + " this review before you sent yours.";
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
      DETAILS.forEach(function (k) { if (data[k] !== undefined && data[k] !== null && round[k] === undefined) round[k] = data[k]; });
      state.rounds.push(round);
      setStatus("waiting_for_review", data.node);
      showReview(round);
    } else if (type === "review.decided") {
      state.rounds.forEach(function (r) {
        if (r.review_id === data.review_id) {
          r.decision = data.decision; r.comment = data.comment; r.decided_by = data.decided_by; r.on_behalf_of = data.on_behalf_of;
          r.edited_output = data.edited_output;
          if (state.sending !== r.review_id) keepDraft(r, decidedBy(data));
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
        if (r.review_id === data.review_id && !r.decision) {
          r.expired = true;
          keepDraft(r, "The task failed (" + data.error + ") before you sent your decision.");
        }
      });
      if (state.open && state.open.review_id === data.review_id) showReview(null);
      $("result").textContent = "Failed: " + data.error;
      $("result-card").hidden = false;
    } else if (type === "task.cancelled") {
      setStatus("cancelled");
      state.rounds.forEach(function (r) {
        if (!r.decision && !r.cancelled && !r.expired) {
          r.cancelled = true;
          keepDraft(r, "The task was cancelled" + (data.by ? " by " + data.by : "") + " before you sent your decision.");
        }
      });
      showReview(null);
    }
    renderRounds();
  }

  // --- deciding ----------------------------------------------------------------------------

  function refuse(message, focus) {
    $("review-error").textContent = message;
    if (focus) $(focus).focus();
  }

  function body(round, decision) {
    var comment = $("comment").value.trim();
    var sent = {decision: decision, comment: comment || null};
    if (decision === "edit") {
      var text = $("edit").value;
      if (typeof round.output === "string") sent.edited_output = text;
      else sent.edited_output = JSON.parse(text);  // SyntaxError: said by the caller
    }
    // Newer servers refuse a decision made on another round or other content (409).
    if (round.round !== undefined && round.content_hash) {
      sent.round = round.round;
      sent.content_hash = round.content_hash;
    }
    return sent;
  }

  async function decide(decision) {
    var round = state.open;
    if (!round || state.sending) return;
    await details(round);
    if (state.open !== round) return;
    if (decision === "approve" && edited()) {
      return refuse("You changed the output: “Approve” would drop your edit. Approve your edit (a), or put the text back.", "edit");
    }
    if (decision === "edit" && !edited()) {
      return refuse("Change the output first, or approve it as it is (a).", "edit");
    }
    if (needsComment(round, decision) && !$("comment").value.trim()) {
      return refuse(decision === "reject" ? "Write a comment so the next revision knows what to change."
        : "This review needs a comment to " + TO[decision] + ": say why.", "comment");
    }
    var sent;
    try { sent = body(round, decision); }
    catch (e) { return refuse("The edited output must stay valid JSON: " + e.message, "edit"); }
    if ((round.dangerous || []).indexOf(decision) >= 0) {
      var sure = await h.ask({
        title: "Really " + TO[decision] + "?",
        text: "This review asks you to confirm before you " + TO[decision] + ": a decision cannot be undone.",
        confirm: "Yes, " + TO[decision], back: "Go back", danger: true,
      });
      if (!sure || state.open !== round) return;
    }
    var buttons = document.querySelectorAll("#review button");
    state.sending = round.review_id;
    buttons.forEach(function (b) { b.disabled = true; });
    try {
      await h.api("POST", "/api/v1/reviews/" + round.review_id + "/decision", sent);
      window.drafts.clear(round.review_id);
      $("review-error").textContent = "";
      if (fromQueue) openNext(round.review_id);
    } catch (err) {
      $("review-error").textContent = err.message;
      if (err.status === 409) {
        // Someone else decided, or a newer round came: the draft stays, and a reload shows why.
        $("review-stale").hidden = false;
        if (state.open !== round) keepDraft(round, err.message + ".");
      }
    } finally {
      state.sending = null;
      buttons.forEach(function (b) { b.disabled = false; });
      updateEdit();
    }
  }

  // The next open review this person may decide (oldest first), or "queue empty".
  async function openNext(decided) {
    var PAGE = 100, offset = 0, next = null;
    try {
      for (;;) {
        var data = await h.api("GET", "/api/v1/reviews?status=open&limit=" + PAGE + "&offset=" + offset);
        next = data.data.find(function (r) {
          var holder = h.claimHolder(r);
          return r.id !== decided && h.mayDecide(r) && (!holder || holder === h.me().name);
        });
        offset += data.data.length;
        if (next || !data.data.length || offset >= data.count) break;
      }
    } catch (err) { next = null; }
    if (next) {
      session(QUEUE_KEY, next.task_id);
      window.location.assign("/tasks/" + next.task_id);
    } else {
      $("queue-done").hidden = false;
      $("queue-link").focus();
    }
  }

  // --- controls and keys -------------------------------------------------------------------

  $("approve").onclick = function () { decide("approve"); };
  $("approve-edited").onclick = function () { decide("edit"); };
  $("reject").onclick = function () { decide("reject"); };
  $("edit").addEventListener("input", function () { updateEdit(); saveDraft(); });
  $("comment").addEventListener("input", saveDraft);
  $("reload").onclick = function () { window.location.reload(); };
  $("kept-discard").onclick = function () {
    window.drafts.clear(state.kept);
    $("kept").hidden = true;
  };
  $("help-open").onclick = h.help;
  $("cancel").onclick = async function () {
    var answer = await h.ask({
      title: "Cancel this task?",
      text: "The task stops for good and its open review is cancelled; a cancelled task is not retried.",
      reason: {label: "Why cancel it?", placeholder: "Submitted by mistake, no longer needed…"},
      confirm: "Cancel the task", back: "Keep the task", danger: true,
    });
    if (!answer) return;
    try { await h.api("POST", "/api/v1/tasks/" + taskId + "/cancel", {reason: answer.reason}); }
    catch (err) { $("live").textContent = err.message; }
  };

  function reviewing() { return !!state.open && !$("review").hidden; }
  h.keys({
    "a": function () {
      if (!reviewing()) return false;
      choose(edited() && allows("edit") ? "edit" : "approve");
      if (state.choice === "approve" && !allows("approve")) choose(null);
    },
    "r": function () {
      if (!reviewing() || !allows("reject")) return false;
      choose("reject");
      $("comment").focus();
    },
    "e": function () {
      if (!reviewing() || !allows("edit")) return false;
      choose("edit");
      $("edit").focus();
    },
    "ctrl+Enter": function () {
      if (!reviewing()) return false;
      if (!state.choice) return refuse("Choose first: a approves, r rejects, e edits the output.");
      decide(state.choice);
    },
    "Escape": function (e) {
      if (!h.typing(e.target)) return false;
      e.target.blur();
    },
    "?": h.help,
  }, ["Escape"]);

  // --- the stream --------------------------------------------------------------------------

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

  window.drafts.prune();
  h.api("GET", "/api/v1/tasks/" + taskId).then(function (task) {
    (task.reviews || []).forEach(function (r) { state.known[r.id] = r; });
    $("flow").textContent = task.flow ? "flow: " + task.flow : "";
    connect();
  }, function (err) {
    setStatus("unknown");
    $("live").textContent = err.status === 404 ? "No such task." : err.message;
  });
})();
