// nnc's network viewer: pan, zoom, click a node for its details, click a cluster's
// title to fold it. Written for nnc (MIT, like the rest of it); no library, no network.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("nnc-data").textContent);
  var stage = document.getElementById("stage");
  var svg = stage.querySelector("svg");
  var panel = document.getElementById("details");
  var vb = svg.viewBox.baseVal;
  var full = { x: vb.x, y: vb.y, w: vb.width, h: vb.height };
  var view = { x: vb.x, y: vb.y, w: vb.width, h: vb.height };

  svg.removeAttribute("width");
  svg.removeAttribute("height");
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");

  function apply() {
    svg.setAttribute("viewBox", [view.x, view.y, view.w, view.h].join(" "));
  }

  function fit() {
    view = { x: full.x, y: full.y, w: full.w, h: full.h };
    apply();
  }

  // A tall network fitted whole is too small to read: start at its top, as wide as
  // the stage or the network (at most one SVG unit a pixel), and let the user scroll.
  function start() {
    var r = stage.getBoundingClientRect();
    if (!r.width || !r.height) return fit();
    var w = Math.max(full.w, r.width);
    var h = (w * r.height) / r.width;
    if (h >= full.h) return fit();
    view = { x: full.x - (w - full.w) / 2, y: full.y, w: w, h: h };
    apply();
  }

  // The SVG user-space point under a client (screen) point.
  function toUser(clientX, clientY) {
    var r = svg.getBoundingClientRect();
    var scale = Math.max(view.w / r.width, view.h / r.height);
    var offX = (r.width * scale - view.w) / 2;
    var offY = (r.height * scale - view.h) / 2;
    return {
      x: view.x - offX + (clientX - r.left) * scale,
      y: view.y - offY + (clientY - r.top) * scale,
      scale: scale,
    };
  }

  function zoom(factor, clientX, clientY) {
    var p = toUser(clientX, clientY);
    var w = Math.min(Math.max(view.w * factor, full.w / 200), full.w * 20);
    var k = w / view.w;
    view.x = p.x - (p.x - view.x) * k;
    view.y = p.y - (p.y - view.y) * k;
    view.w = w;
    view.h = view.h * k;
    apply();
  }

  stage.addEventListener(
    "wheel",
    function (e) {
      e.preventDefault();
      zoom(e.deltaY > 0 ? 1.15 : 1 / 1.15, e.clientX, e.clientY);
    },
    { passive: false }
  );

  var drag = null;
  stage.addEventListener("pointerdown", function (e) {
    drag = { x: e.clientX, y: e.clientY, moved: false, start: toUser(e.clientX, e.clientY) };
  });
  window.addEventListener("pointermove", function (e) {
    if (!drag) return;
    var dx = e.clientX - drag.x;
    var dy = e.clientY - drag.y;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    drag.moved = true;
    stage.classList.add("panning");
    var s = drag.start.scale;
    view.x -= dx * s;
    view.y -= dy * s;
    drag.x = e.clientX;
    drag.y = e.clientY;
    apply();
  });
  window.addEventListener("pointerup", function () {
    stage.classList.remove("panning");
    setTimeout(function () { drag = null; }, 0);
  });

  function row(table, key, value) {
    if (value === null || value === undefined || value === "") return;
    var tr = document.createElement("tr");
    var th = document.createElement("th");
    var td = document.createElement("td");
    th.textContent = key;
    td.textContent = value;
    tr.appendChild(th);
    tr.appendChild(td);
    table.appendChild(tr);
  }

  function fmt(n) {
    return n === null ? "depends on symbolic dims" : n.toLocaleString("en-US");
  }

  function show(info) {
    panel.innerHTML = "";
    var h = document.createElement("h2");
    h.textContent = info.name;
    panel.appendChild(h);
    var table = document.createElement("table");
    row(table, "layer", info.text);
    row(table, "op", info.op);
    row(table, "output shape", info.shape);
    row(table, "parameters", fmt(info.params));
    row(table, "MACs per sample", fmt(info.macs));
    row(table, "in", info.cluster);
    row(table, info.op === "block" || info.op === "model" ? "used at" : "defined at", info.where);
    panel.appendChild(table);
    if (info.source) {
      var pre = document.createElement("pre");
      pre.className = "source";
      pre.textContent = info.source;
      panel.appendChild(pre);
    }
    panel.classList.add("open");
  }

  var selected = null;
  Object.keys(data.boxes).forEach(function (id) {
    var g = document.getElementById(id);
    if (!g) return;
    g.addEventListener("click", function (e) {
      if (drag && drag.moved) return;
      e.stopPropagation();
      if (selected) selected.classList.remove("selected");
      selected = g;
      g.classList.add("selected");
      show(data.boxes[id]);
    });
  });

  // Folding a cluster hides what is inside it and the edges between its members.
  var folded = {};
  function inside(clusterId, chain) {
    return chain.indexOf(clusterId) >= 0;
  }
  function refold() {
    var hidden = {};
    Object.keys(data.boxes).forEach(function (id) {
      var chain = data.boxes[id].chain;
      var h = Object.keys(folded).some(function (c) { return folded[c] && inside(c, chain); });
      hidden[id] = h;
      var g = document.getElementById(id);
      if (g) g.style.display = h ? "none" : "";
    });
    Object.keys(data.clusters).forEach(function (cid) {
      var g = document.getElementById(cid);
      if (!g) return;
      var chain = data.clusters[cid].chain;
      var h = Object.keys(folded).some(function (c) { return folded[c] && c !== cid && inside(c, chain); });
      g.style.display = h ? "none" : "";
      g.classList.toggle("folded", !!folded[cid]);
    });
    data.edges.forEach(function (e) {
      var g = document.getElementById(e.id);
      if (!g) return;
      var both = hidden[e.from] && hidden[e.to];
      var within = both && Object.keys(folded).some(function (c) {
        return folded[c] && inside(c, data.boxes[e.from].chain) && inside(c, data.boxes[e.to].chain);
      });
      g.style.display = within ? "none" : "";
    });
  }
  Object.keys(data.clusters).forEach(function (cid) {
    var g = document.getElementById(cid);
    if (!g) return;
    g.addEventListener("click", function (e) {
      if (drag && drag.moved) return;
      e.stopPropagation();
      folded[cid] = !folded[cid];
      refold();
      show(data.clusters[cid]);
    });
  });

  document.getElementById("zoom-in").addEventListener("click", function () {
    var r = svg.getBoundingClientRect();
    zoom(1 / 1.3, r.left + r.width / 2, r.top + r.height / 2);
  });
  document.getElementById("zoom-out").addEventListener("click", function () {
    var r = svg.getBoundingClientRect();
    zoom(1.3, r.left + r.width / 2, r.top + r.height / 2);
  });
  document.getElementById("zoom-fit").addEventListener("click", fit);
  document.getElementById("unfold").addEventListener("click", function () {
    folded = {};
    refold();
  });
  start();
  document.body.setAttribute("data-ready", "true");
})();
