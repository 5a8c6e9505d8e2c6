// A word-level diff (longest common subsequence), for showing what a revision changed.
"use strict";
window.wordDiff = function (before, after) {
  var a = (before || "").split(/(\s+)/), b = (after || "").split(/(\s+)/);
  if (a.length * b.length > 4000000) return [["-", before], ["+", after]];
  var n = a.length, m = b.length, i, j;
  var lcs = new Array(n + 1);
  for (i = 0; i <= n; i++) lcs[i] = new Int32Array(m + 1);
  for (i = n - 1; i >= 0; i--)
    for (j = m - 1; j >= 0; j--)
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  var ops = [];
  function push(op, text) {
    if (ops.length && ops[ops.length - 1][0] === op) ops[ops.length - 1][1] += text;
    else ops.push([op, text]);
  }
  i = 0; j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { push("=", a[i]); i++; j++; }
    else if (lcs[i + 1][j] >= lcs[i][j + 1]) { push("-", a[i]); i++; }
    else { push("+", b[j]); j++; }
  }
  for (; i < n; i++) push("-", a[i]);
  for (; j < m; j++) push("+", b[j]);
  return ops;
};
window.renderDiff = function (ops) {
  var pre = document.createElement("pre");
  pre.className = "diff";
  ops.forEach(function (op) {
    var tag = op[0] === "+" ? "ins" : op[0] === "-" ? "del" : "span";
    var node = document.createElement(tag);
    node.textContent = op[1];
    pre.appendChild(node);
  });
  return pre;
};
