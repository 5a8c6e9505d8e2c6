// The classic page: a client of the cookbook API only (POST /submit, GET /stream/{id},
// POST /feedback/{id}). A file, not an inline script: the CSP runs no inline script.
(function () {
  var taskId = null, source = null;
  var $ = function (id) { return document.getElementById(id); };
  function log(text) { var li = document.createElement("li"); li.textContent = text; $("log").appendChild(li); }
  function feedback(value) {
    $("reviewSection").hidden = true;
    fetch("/feedback/" + taskId, {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({feedback: value})}).then(function (r) { log("feedback " + value + " → " + r.status); });
  }
  $("approveBtn").onclick = function () { feedback("approved"); };
  $("rejectBtn").onclick = function () { feedback("rejected"); };
  $("taskForm").onsubmit = function (e) {
    e.preventDefault();
    $("resultSection").hidden = true;
    fetch("/submit", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({data: $("taskInput").value})})
      .then(function (r) { return r.json(); })
      .then(function (body) {
        taskId = body.task_id; $("taskId").textContent = taskId;
        if (source) source.close();
        source = new EventSource("/stream/" + taskId);
        source.onmessage = function (ev) {
          var msg = JSON.parse(ev.data);
          log(msg.status);
          if (msg.status === "stream_closed") { source.close(); return; }
          $("taskStatus").textContent = msg.status;
          if (msg.status === "waiting_for_review") {
            $("outputToReview").textContent = msg.output_to_review; $("reviewSection").hidden = false;
          } else { $("reviewSection").hidden = true; }
          if (msg.status === "completed") { $("finalResult").textContent = msg.final_result; $("resultSection").hidden = false; }
          if (msg.status === "failed") { $("finalResult").textContent = "Error: " + msg.error; $("resultSection").hidden = false; }
        };
      });
  };
})();
