// A flow drawn as SVG, from the server's graph (GET /api/v1/flows/{name}), with no library.
// Nodes stand in layers by their distance from the start; each edge says its action. An edge
// that goes back (a rejection that loops to an earlier node) runs beside the nodes on one side,
// one that skips a layer on the other. A nested flow is a box with its own nodes inside. Left
// to right where that fits the box, else top to bottom (a narrow screen).
"use strict";
window.flowGraph = (function () {
  var NS = "http://www.w3.org/2000/svg";
  var NODE_H = 44, PAD = 12, HEAD = 24, GAP = 84, SIBLING = 18, LANE = 18, START = 28, EDGE = 10;
  var KINDS = {review: "a person decides here", flow: "a flow used as a node", node: "a step"};

  function svg(tag, attrs, children) {
    var node = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "cls") node.setAttribute("class", attrs[k]);
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  // Text is not measured (the SVG is built before it is shown): about this wide per character.
  function textWidth(text, size) { return String(text).length * size * 0.6; }
  function caption(n) { return n.type.toLowerCase() === n.name.toLowerCase() ? "" : n.type; }

  // The graph by flow: each flow's nodes (in the server's order, start first) and its edges,
  // one per pair of nodes, with every action between them.
  function levels(graph) {
    var out = {};
    function level(key) { return out[key] || (out[key] = {nodes: [], edges: [], byPair: {}}); }
    var parentOf = {};
    graph.nodes.forEach(function (n) { parentOf[n.id] = n.parent || ""; level(n.parent || "").nodes.push(n); });
    graph.edges.forEach(function (e) {
      var lv = level(parentOf[e.source] || ""), pair = e.source + "\n" + e.target;
      if (lv.byPair[pair]) { lv.byPair[pair].actions.push(e.action); return; }
      lv.byPair[pair] = {source: e.source, target: e.target, actions: [e.action]};
      lv.edges.push(lv.byPair[pair]);
    });
    return out;
  }

  // Lay out one flow's nodes; returns {w, h, draw(group, x, y)}. `vertical`: layers top to
  // bottom. u is the axis along the layers, v the one across.
  function layout(all, key, vertical) {
    var lv = all[key], nodes = lv.nodes;
    if (!nodes.length) return {w: 0, h: 0, draw: function () {}};
    var layer = {}, start = nodes.filter(function (n) { return n.start; })[0] || nodes[0];
    layer[start.id] = 0;
    for (var queue = [start.id]; queue.length;) {  // breadth first: the shortest way in
      var id = queue.shift();
      lv.edges.forEach(function (e) {
        if (e.source === id && layer[e.target] === undefined) { layer[e.target] = layer[id] + 1; queue.push(e.target); }
      });
    }
    var layers = [], size = {}, inner = {};
    nodes.forEach(function (n) {
      if (layer[n.id] === undefined) layer[n.id] = 0;
      (layers[layer[n.id]] = layers[layer[n.id]] || []).push(n);
      if (n.kind === "flow" && all[n.id]) {
        inner[n.id] = layout(all, n.id, vertical);
        size[n.id] = {w: Math.max(inner[n.id].w + 2 * PAD, textWidth(n.name + " · " + n.type, 12) + 2 * PAD),
                      h: inner[n.id].h + HEAD + PAD};
      } else {
        size[n.id] = {w: Math.max(84, textWidth(n.name, 13.5), textWidth(caption(n), 11.5)) + 26, h: NODE_H};
      }
    });
    function su(id) { return vertical ? size[id].h : size[id].w; }
    function sv(id) { return vertical ? size[id].w : size[id].h; }
    // Edges: forward to the next layer, skipping ahead (lanes before), or back (lanes after).
    var before = [], after = [], labelRoom = 0;
    lv.edges.forEach(function (e) {
      var from = layer[e.source], to = layer[e.target];
      e.label = e.actions.join(", ");
      labelRoom = Math.max(labelRoom, textWidth(e.label, 11.5));
      if (e.source === e.target || to > from + 1) { e.lane = before.length; e.side = "before"; before.push(e); }
      else if (to <= from) { e.lane = after.length; e.side = "after"; after.push(e); }
      else e.side = "next";
    });
    // Across the layers, a lane's label sits on its line: it needs room for itself.
    var laneRoom = vertical ? labelRoom / 2 + 8 : 10;
    var vBefore = before.length ? before.length * LANE + laneRoom : 0;
    var vAfter = after.length ? after.length * LANE + laneRoom : 0;
    var gap = Math.max(GAP, vertical ? 56 : labelRoom + 34);
    var extentU = layers.map(function (ns) { return Math.max.apply(null, ns.map(function (n) { return su(n.id); })); });
    var extentV = layers.map(function (ns) {
      return ns.reduce(function (sum, n) { return sum + sv(n.id); }, 0) + (ns.length - 1) * SIBLING;
    });
    var crossV = Math.max.apply(null, extentV);
    var place = {}, u = START;
    layers.forEach(function (ns, i) {
      var v = vBefore + (crossV - extentV[i]) / 2;
      ns.forEach(function (n) {
        var pu = u + (extentU[i] - su(n.id)) / 2;
        place[n.id] = vertical ? {x: v, y: pu, w: size[n.id].w, h: size[n.id].h}
                               : {x: pu, y: v, w: size[n.id].w, h: size[n.id].h};
        v += sv(n.id) + SIBLING;
      });
      u += extentU[i] + gap;
    });
    var totalU = u - gap + EDGE, totalV = vBefore + crossV + vAfter;
    var w = vertical ? totalV : totalU, h = vertical ? totalU : totalV;

    function draw(group, x0, y0) {
      var edges = svg("g", {cls: "edges"}), boxes = svg("g", {cls: "nodes"});
      group.appendChild(edges);
      group.appendChild(boxes);
      var at = {};
      Object.keys(place).forEach(function (id) {
        var p = place[id];
        at[id] = {x: x0 + p.x, y: y0 + p.y, w: p.w, h: p.h};
      });
      // Where the flow starts: a dot and an arrow into its first node.
      var s = at[start.id];
      var dot = vertical ? {x: s.x + s.w / 2, y: y0 + 6} : {x: x0 + 6, y: s.y + s.h / 2};
      edges.appendChild(svg("circle", {cls: "start", cx: dot.x, cy: dot.y, r: 5}));
      edges.appendChild(svg("path", {cls: "edge", "marker-end": "url(#flow-arrow)",
        d: vertical ? "M" + dot.x + "," + (dot.y + 5) + " V" + s.y : "M" + (dot.x + 5) + "," + dot.y + " H" + s.x}));
      lv.edges.forEach(function (e) {
        if (at[e.source] && at[e.target]) drawEdge(edges, e, at[e.source], at[e.target], x0, y0);
      });
      nodes.forEach(function (n) { drawNode(boxes, n, at[n.id], inner[n.id]); });
    }

    function drawEdge(g, e, a, b, x0, y0) {
      var d, lx, ly;
      var ax = a.x + a.w / 2, ay = a.y + a.h / 2, bx = b.x + b.w / 2, by = b.y + b.h / 2;
      if (e.side === "next") {
        if (vertical) {
          var y1 = a.y + a.h, y2 = b.y, my = (y1 + y2) / 2;
          d = "M" + ax + "," + y1 + " C" + ax + "," + my + " " + bx + "," + my + " " + bx + "," + y2;
          lx = (ax + bx) / 2; ly = my;
        } else {
          var x1 = a.x + a.w, x2 = b.x, mx = (x1 + x2) / 2;
          d = "M" + x1 + "," + ay + " C" + mx + "," + ay + " " + mx + "," + by + " " + x2 + "," + by;
          lx = mx; ly = (ay + by) / 2;
        }
      } else if (e.side === "after") {
        var far = (e.lane + 1) * LANE;
        if (vertical) {
          var lane = x0 + vBefore + crossV + far - LANE / 2;
          d = corners([[a.x + a.w, ay], [lane, ay], [lane, by], [b.x + b.w, by]]);
          lx = lane; ly = (ay + by) / 2;
        } else {
          var laneY = y0 + vBefore + crossV + far - LANE / 2;
          d = corners([[ax + 8, a.y + a.h], [ax + 8, laneY], [bx - 8, laneY], [bx - 8, b.y + b.h]]);
          lx = (ax + bx) / 2; ly = laneY;
        }
      } else {
        var near = vBefore - (e.lane + 1) * LANE + LANE / 2;
        if (e.source === e.target) {  // a node that goes on to itself
          if (vertical) {
            var lx0 = x0 + near;
            d = corners([[a.x, ay - 8], [lx0, ay - 8], [lx0, ay + 8], [a.x, ay + 8]]);
            lx = lx0; ly = ay;
          } else {
            var ly0 = y0 + near;
            d = corners([[ax - 14, a.y], [ax - 14, ly0], [ax + 14, ly0], [ax + 14, a.y]]);
            lx = ax; ly = ly0;
          }
        } else if (vertical) {
          var laneX = x0 + near;
          d = corners([[a.x, ay], [laneX, ay], [laneX, by], [b.x, by]]);
          lx = laneX; ly = (ay + by) / 2;
        } else {
          var top = y0 + near;
          d = corners([[ax, a.y], [ax, top], [bx, top], [bx, b.y]]);
          lx = (ax + bx) / 2; ly = top;
        }
      }
      var plain = e.actions.length === 1 && e.actions[0] === "default";
      g.appendChild(svg("g", {cls: "flow-edge" + (plain ? " default" : ""), "data-testid": "flow-edge",
                              "data-source": e.source, "data-target": e.target, "data-action": e.label}, [
        svg("title", {text: e.source + " → " + e.target + " when it returns " + e.actions.join(" or ")}),
        svg("path", {cls: "edge", d: d, "marker-end": "url(#flow-arrow)"}),
        svg("text", {cls: "action", x: lx, y: ly + 4, "text-anchor": "middle", text: e.label}),
      ]));
    }

    function drawNode(g, n, p, nested) {
      var node = svg("g", {cls: "flow-node kind-" + n.kind, "data-node": n.id, "data-testid": "flow-node"}, [
        svg("title", {text: n.id + " (" + n.type + "): " + KINDS[n.kind]}),
      ]);
      if (nested) {
        node.appendChild(svg("rect", {cls: "box", x: p.x, y: p.y, width: p.w, height: p.h, rx: 10}));
        node.appendChild(svg("text", {cls: "flow-title", x: p.x + PAD, y: p.y + 16, text: n.name + " · " + n.type}));
        g.appendChild(node);
        nested.draw(g, p.x + PAD, p.y + HEAD);
        return;
      }
      var cx = p.x + p.w / 2, sub = caption(n);
      node.appendChild(svg("rect", {cls: "box", x: p.x, y: p.y, width: p.w, height: p.h, rx: n.kind === "review" ? 22 : 8}));
      node.appendChild(svg("text", {cls: "name", x: cx, y: p.y + (sub ? 19 : 27), "text-anchor": "middle", text: n.name}));
      if (sub) node.appendChild(svg("text", {cls: "type", x: cx, y: p.y + 34, "text-anchor": "middle", text: sub}));
      g.appendChild(node);
    }

    return {w: w, h: h, draw: draw};
  }

  // A path through `points` with rounded corners.
  function corners(points) {
    var r = 6, d = "M" + points[0][0] + "," + points[0][1];
    for (var i = 1; i < points.length - 1; i++) {
      var p = points[i], a = points[i - 1], b = points[i + 1];
      var inLen = Math.max(Math.abs(p[0] - a[0]), Math.abs(p[1] - a[1]));
      var outLen = Math.max(Math.abs(b[0] - p[0]), Math.abs(b[1] - p[1]));
      var k = Math.min(r, inLen / 2, outLen / 2);
      var p1 = [p[0] - Math.sign(p[0] - a[0]) * k, p[1] - Math.sign(p[1] - a[1]) * k];
      var p2 = [p[0] + Math.sign(b[0] - p[0]) * k, p[1] + Math.sign(b[1] - p[1]) * k];
      d += " L" + p1[0] + "," + p1[1] + " Q" + p[0] + "," + p[1] + " " + p2[0] + "," + p2[1];
    }
    var last = points[points.length - 1];
    return d + " L" + last[0] + "," + last[1];
  }

  function render(graph, vertical) {
    var all = levels(graph), root = layout(all, "", vertical), M = 6;
    var w = Math.ceil(root.w + 2 * M), h = Math.ceil(root.h + 2 * M);
    var box = svg("svg", {cls: "flow " + (vertical ? "vertical" : "horizontal"), width: w, height: h,
                          viewBox: "0 0 " + w + " " + h, role: "img", "aria-labelledby": "flow-graph-title"}, [
      svg("title", {id: "flow-graph-title", text: "The flow's nodes, and the action that leads from each to the next"}),
      svg("defs", {}, [svg("marker", {id: "flow-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
                                      markerHeight: 7, orient: "auto-start-reverse"}, [svg("path", {d: "M0,0 L10,5 L0,10 z"})])]),
    ]);
    var group = svg("g", {});
    box.appendChild(group);
    root.draw(group, M, M);
    return box;
  }

  // Draw `graph` into `box` (an element), left to right if that fits, else top to bottom; drawn
  // again when the window's width changes which one fits. `mark` then says where the task is.
  function draw(box, graph) {
    var shown = null, marks = null;
    function fit() {
      var wide = render(graph, false), tall = render(graph, true);
      var room = box.clientWidth || 800, wideW = Number(wide.getAttribute("width"));
      var vertical = wideW > room && Number(tall.getAttribute("width")) < wideW;
      if (shown === vertical) return;
      shown = vertical;
      box.replaceChildren(vertical ? tall : wide);
      if (marks) mark.apply(null, marks);
    }
    function mark(current, status, visited) {
      marks = [current, status, visited];
      box.querySelectorAll("[data-node]").forEach(function (n) {
        var id = n.getAttribute("data-node"), here = !!current && id === current;
        n.classList.toggle("current", here);
        n.classList.toggle("holds-current", !!current && current.indexOf(id + "/") === 0);
        n.classList.toggle("visited", !!visited && !!visited[id]);
        ["queued", "running", "waiting_for_review", "failed"].forEach(function (s) {
          n.classList.toggle("is-" + s, here && s === status);
        });
        if (here) n.setAttribute("aria-current", "step"); else n.removeAttribute("aria-current");
      });
    }
    fit();
    var pending = null;
    window.addEventListener("resize", function () {
      if (pending) return;
      pending = window.requestAnimationFrame(function () { pending = null; fit(); });
    });
    return {mark: mark};
  }

  return {draw: draw};
})();
