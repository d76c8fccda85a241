// The character editor page: plain JavaScript over the JSON API
// (docs/api.md). State lives in `state`; every picture comes from the server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  info: null,
  base: null,      // {latent, image, origin}: the character before edits
  editor: null,    // editorInfo of the chosen method
  edits: [],       // [{direction, t}] in the order they are applied
  current: null,   // {latent, image} after the edits
  a: null, b: null, fused: null,
};
const GALLERY = 12;
const SLIDER_RANGE = 6; // the learned editors were trained on |ε| ≤ 6

// The access token of a shared server comes in the link serve printed
// (http://host:port/#token=…): it is moved out of the address bar at once
// and kept for this tab only. The fragment is never sent to the server.
const TOKEN = (() => {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("latentedit-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("latentedit-token") || "";
})();

async function api(path, body) {
  const headers = TOKEN ? { "Authorization": "Bearer " + TOKEN } : {};
  const opt = body === undefined ? { headers } :
    { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const res = await fetch(path, opt);
  const data = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) {
    throw new Error((data.field ? data.field + ": " : "") + (data.error || `HTTP ${res.status}`));
  }
  return data;
}

function showError(err) {
  const el = $("error");
  if (!err) { el.hidden = true; return; }
  el.textContent = String(err.message || err);
  el.hidden = false;
}

// latest runs at most one request per key at a time and, while one runs,
// keeps only the newest next one: dragging a slider sends what the server
// can keep up with and always ends on the final position.
// <body data-busy> counts the lanes at work, so a test (or a person
// reading the DOM) can tell when the page has settled.
const lanes = {};
function setBusy() {
  document.body.dataset.busy = String(Object.values(lanes).filter((l) => l.busy).length);
}
function latest(key, fn) {
  const lane = lanes[key] || (lanes[key] = { busy: false, next: null });
  if (lane.busy) { lane.next = fn; return; }
  lane.busy = true;
  setBusy();
  fn().catch(showError).finally(() => {
    lane.busy = false;
    const next = lane.next;
    lane.next = null;
    if (next) latest(key, next);
    setBusy();
  });
}

async function init() {
  try {
    state.info = await api("/api/info");
  } catch (err) { showError(err); return; }
  const i = state.info;
  $("model-line").textContent = `model ${i.model || "?"}: ${i.kind.toUpperCase()} trained on ${i.dataset}, ` +
    `${i.width}×${i.height} pixels, latent of ${i.latent_dim} numbers, ${i.editors.length} editors`;
  const sel = $("method");
  for (const e of i.editors) {
    const o = document.createElement("option");
    o.value = e.name;
    o.textContent = `${e.name} (${e.method})`;
    sel.appendChild(o);
  }
  const preferred = i.editors.find((e) => e.name === "interfacegan") || i.editors[0];
  sel.onchange = () => chooseEditor(sel.value);
  if (preferred) {
    sel.value = preferred.name;
    chooseEditor(sel.value);
  } else {
    $("method-note").textContent = "this model has no editors yet: make one with `latentedit discover --model " +
      (i.model || "MODEL") + " --method sefa`, then reload";
  }
  if (!i.editors.some((e) => e.commutes)) {
    document.querySelector('#modes input[value="v"]').disabled = true;
  }
  $("upload-note").textContent += i.invert.default === "encoder"
    ? " This model has an encoder: one pass."
    : ` This model is a GAN: the latent is found by ${i.invert.steps} steps of gradient descent` +
      (i.invert.start === "encoder" ? " from its encoder's guess (a few seconds)." : " (a few seconds).");
  $("new-batch").onclick = () => loadGallery(Math.floor(Math.random() * 1e6));
  $("go-seed").onclick = () => loadGallery(Math.max(0, parseInt($("seed").value, 10) || 0));
  $("reset").onclick = () => { state.edits = []; syncSliders(); refresh(); };
  $("other-order").onchange = refresh;
  $("mix").oninput = () => { $("mix-value").textContent = Number($("mix").value).toFixed(2); fuse(); };
  for (const r of document.querySelectorAll('#modes input')) r.onchange = fuse;
  $("edit-fused").onclick = () => {
    if (state.fused) pick({ latent: state.fused.latent, image: state.fused.image, origin: state.fused.origin });
  };
  $("upload").onchange = upload;
  await loadGallery(1);
}

async function loadGallery(seed) {
  $("seed").value = seed;
  const g = $("gallery");
  g.innerHTML = '<p class="hint">drawing characters…</p>';
  let res;
  try {
    res = await api("/api/sample", { seed, count: GALLERY });
  } catch (err) { showError(err); g.innerHTML = ""; return; }
  g.innerHTML = "";
  for (const c of res.characters) {
    const card = document.createElement("div");
    card.className = "card";
    card.innerHTML = `<img alt="character of seed ${c.seed}" src="${c.image}">
      <div class="seed">seed ${c.seed}</div>
      <button class="slot-a" title="fusion slot A">A</button> <button class="slot-b" title="fusion slot B">B</button>`;
    const ch = { latent: c.latent, image: c.image, origin: `seed ${c.seed}` };
    card.querySelector("img").onclick = () => {
      for (const o of g.querySelectorAll(".card")) o.classList.remove("selected");
      card.classList.add("selected");
      pick(ch);
    };
    card.querySelector(".slot-a").onclick = () => setSlot("a", ch);
    card.querySelector(".slot-b").onclick = () => setSlot("b", ch);
    g.appendChild(card);
  }
  if (!state.base) g.querySelector(".card img").click();
}

// pick makes ch the character being edited, keeping the method, clearing edits.
function pick(ch) {
  state.base = ch;
  state.edits = [];
  syncSliders();
  refresh();
}

// What the order of edits means for each method: what the "other order"
// toggle will show.
const methodNotes = {
  linear: "straight-line directions: the order of edits does not matter",
  ganspace: "straight-line directions (PCA): the order of edits does not matter",
  sefa: "straight-line directions (from G's first layer): the order of edits does not matter",
  interfacegan: "straight-line directions (fitted to labels): the order of edits does not matter",
  warped: "curved paths: a different order of edits gives a different character — try “show the other order”",
  curvilinear: "curved paths that add up in a learned space V: the order of edits does not matter",
};

// label is how a direction's name reads on the page: InterFaceGAN's
// conditional directions ("bangs|hair_length": bangs with the hair_length
// boundary projected out) say what they hold still.
function labelOf(dir) {
  const [what, ...held] = dir.split("|");
  return held.length ? `${what} (keep ${held.join(", ")})` : dir;
}

function chooseEditor(name) {
  state.editor = state.info.editors.find((e) => e.name === name);
  state.edits = [];
  const box = $("sliders");
  box.innerHTML = "";
  state.editor.names.forEach((dir, k) => {
    const unnamed = /^(dir|pc|sefa) \d+$/.test(dir);
    const label = document.createElement("label");
    label.htmlFor = `slider-${k}`;
    label.textContent = labelOf(dir);
    label.title = dir;
    if (unnamed) {
      label.className = "unnamed";
      label.title = "the evaluation could not match this direction to an attribute";
    }
    const input = document.createElement("input");
    Object.assign(input, { type: "range", id: `slider-${k}`, min: -SLIDER_RANGE, max: SLIDER_RANGE, step: 0.1, value: 0 });
    input.dataset.direction = dir;
    const out = document.createElement("output");
    out.id = `slider-${k}-value`;
    out.textContent = "0.0";
    input.oninput = () => setAmount(dir, Number(input.value));
    box.append(label, input, out);
  });
  $("method-note").textContent = methodNotes[state.editor.method] || "";
  syncSliders(); // the edit list empties: edits belong to one editor's directions
  refresh();
}

// setAmount puts (direction, t) in the edit list: a new direction goes last,
// a known one keeps its place, zero removes it.
function setAmount(dir, t) {
  const i = state.edits.findIndex((e) => e.direction === dir);
  if (t === 0) { if (i >= 0) state.edits.splice(i, 1); }
  else if (i >= 0) state.edits[i].t = t;
  else state.edits.push({ direction: dir, t });
  syncSliders();
  refresh();
}

function syncSliders() {
  for (const input of $("sliders").querySelectorAll("input")) {
    const e = state.edits.find((x) => x.direction === input.dataset.direction);
    const t = e ? e.t : 0;
    if (Number(input.value) !== t) input.value = t;
    $(input.id + "-value").textContent = t.toFixed(1);
  }
  const list = $("edits");
  list.innerHTML = "";
  if (state.edits.length === 0) {
    list.innerHTML = '<li class="empty">none yet — move a slider</li>';
  }
  state.edits.forEach((e, i) => {
    const li = document.createElement("li");
    li.innerHTML = `<b></b> ${e.t > 0 ? "+" : ""}${e.t.toFixed(1)}
      <button title="apply earlier" ${i === 0 ? "disabled" : ""}>↑</button><button title="apply later" ${i === state.edits.length - 1 ? "disabled" : ""}>↓</button><button title="remove">×</button>`;
    li.querySelector("b").textContent = labelOf(e.direction);
    const [up, down, del] = li.querySelectorAll("button");
    up.onclick = () => move(i, -1);
    down.onclick = () => move(i, +1);
    del.onclick = () => { state.edits.splice(i, 1); syncSliders(); refresh(); };
    list.appendChild(li);
  });
}

function move(i, by) {
  const [e] = state.edits.splice(i, 1);
  state.edits.splice(i + by, 0, e);
  syncSliders();
  refresh();
}

function editRequest(steps) {
  return { editor: state.editor.name, latent: state.base.latent, steps };
}

// refresh renders the edited character (and, when asked, the other order).
function refresh() {
  if (!state.base) return;
  if (!state.editor) { // no editors: the character is shown as drawn
    showCurrent({ latent: state.base.latent, image: state.base.image }, { latent: state.base.latent, editor: "", steps: [] });
    return;
  }
  const steps = state.edits.map((e) => ({ direction: e.direction, t: e.t }));
  latest("main", async () => {
    const req = editRequest(steps);
    const res = await api("/api/edit", req);
    showCurrent(res, req);
    showError(null);
  });
  const other = $("other-order").checked && steps.length > 1;
  $("other-figure").hidden = !other;
  if (other) {
    latest("other", async () => {
      const res = await api("/api/edit", editRequest(steps.slice().reverse()));
      $("other").src = res.image;
      await compareOrders();
    });
  }
}

// showCurrent shows an edit response; the recipe is built from the request
// that produced it, so the two downloads always agree.
function showCurrent(res, req) {
  state.current = res;
  $("current").src = res.image;
  const n = req.steps.length;
  $("current-caption").textContent = `${state.base.origin}` + (n ? `, ${n} edit${n > 1 ? "s" : ""}` : ", unedited");
  const png = $("download-png");
  png.href = res.image;
  png.classList.remove("disabled");
  const recipe = {
    format_version: 1, model: state.info.model, origin: state.base.origin,
    latent: req.latent, editor: req.editor, steps: req.steps,
  };
  const r = $("download-recipe");
  if (r.href.startsWith("blob:")) URL.revokeObjectURL(r.href);
  r.href = URL.createObjectURL(new Blob([JSON.stringify(recipe, null, 1)], { type: "application/json" }));
  r.classList.remove("disabled");
  if ($("other-order").checked) compareOrders();
}

// compareOrders writes how far apart the two orders' pictures are, in
// grey levels: commutativity you can read.
async function compareOrders() {
  const a = $("current"), b = $("other");
  if (!a.src || !b.src || $("other-figure").hidden) return;
  await Promise.all([a.decode(), b.decode()]).catch(() => {});
  const px = (img) => {
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext("2d");
    ctx.drawImage(img, 0, 0);
    return ctx.getImageData(0, 0, c.width, c.height).data;
  };
  const pa = px(a), pb = px(b);
  let sum = 0, n = 0;
  for (let i = 0; i < pa.length && i < pb.length; i++) { if (i % 4 !== 3) { sum += Math.abs(pa[i] - pb[i]); n++; } }
  $("other-caption").textContent = `same edits in reverse order: differs by ${(sum / Math.max(1, n)).toFixed(1)} of 255 per pixel`;
}

function setSlot(which, ch) {
  state[which] = ch;
  $(`slot-${which}`).src = ch.image;
  $(`slot-${which}-caption`).textContent = `${which.toUpperCase()}: ${ch.origin}`;
  fuse();
}

function fuse() {
  if (!state.a || !state.b) return;
  const mode = document.querySelector('#modes input:checked').value;
  const body = { a: state.a.latent, b: state.b.latent, mix: Number($("mix").value), mode };
  if (mode === "v") {
    const curv = state.info.editors.find((e) => e.commutes);
    if (!curv) return;
    body.editor = curv.name;
  }
  latest("fuse", async () => {
    const res = await api("/api/interpolate", body);
    state.fused = { ...res, origin: `fusion of ${state.a.origin} and ${state.b.origin} (${mode}, mix ${body.mix.toFixed(2)})` };
    $("fused").src = res.image;
    $("edit-fused").disabled = false;
    showError(null);
  });
}

async function upload() {
  const file = $("upload").files[0];
  if (!file) return;
  const bar = $("upload-progress"), status = $("upload-status");
  const dataURL = await new Promise((ok, fail) => {
    const r = new FileReader();
    r.onload = () => ok(r.result);
    r.onerror = () => fail(r.error);
    r.readAsDataURL(file);
  });
  bar.hidden = false; bar.value = 0;
  status.textContent = `sending ${file.name}…`;
  try {
    let job = await api("/api/invert", { image: dataURL });
    $("upload-target").src = job.target;
    while (!job.done) {
      bar.value = job.steps ? job.step / job.steps : 0;
      status.textContent = `finding its latent: step ${job.step} of ${job.steps}` + (job.step ? `, pixel error ${job.loss.toFixed(4)}` : "");
      await new Promise((ok) => setTimeout(ok, 300));
      job = await api(`/api/invert/${job.id}`);
    }
    if (job.error) throw new Error(job.error);
    bar.value = 1;
    status.textContent = `done (${job.method}${job.method === "optimise" ? `, pixel error ${job.loss.toFixed(4)}` : ""}): now edit it with the sliders`;
    $("upload-result").src = job.image;
    pick({ latent: job.latent, image: job.image, origin: `upload ${file.name}` });
  } catch (err) {
    status.textContent = "failed";
    showError(err);
  }
}

init();
