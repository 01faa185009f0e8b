// The sandbox page: polls /sandbox/state every second and posts what you do to /sandbox/*.
// Every piece of HTML it shows was rendered (and escaped) by trame_bot.sandbox.render.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const POLL_MS = 1000;

let me = localStorage.getItem("sandbox.user");
let pane = localStorage.getItem("sandbox.pane");
let shown = {}; // pane id -> the HTML it shows
let modalKey = null;
let pendingAction = null;
let engine = { api_key: "", workflows: [] };
let busy = false;
let current = null; // the pane on screen
let team = null; // the Slack team on screen: its channels and people only

// ---- talking to the sandbox ---------------------------------------------------------------

async function post(path, body) {
  try {
    const response = await fetch("/sandbox/" + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: me, ...body }),
    });
    if (!response.ok) {
      flash(await response.text());
      return null;
    }
    const outcome = await response.json();
    if (outcome.error) flash(outcome.error);
    return outcome;
  } finally {
    refresh();
  }
}

async function refresh() {
  if (busy) return;
  busy = true;
  const asked = me;
  try {
    const query = me ? "?user=" + encodeURIComponent(me) : "";
    const response = await fetch("/sandbox/state" + query);
    if (response.status === 400 && me) {
      me = null; // a person from an older sandbox: start again with the first one
      return;
    }
    // Someone else was chosen while this answer travelled: it is not theirs to draw.
    if (response.ok && me === asked) apply(await response.json());
  } catch (error) {
    flash("The sandbox server does not answer (is trame-bot serve --sandbox running?)");
  } finally {
    busy = false;
    if (me !== asked) refresh();
  }
}

function flash(text) {
  const box = $("#flash");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => (box.hidden = true), 6000);
}

// ---- drawing the state --------------------------------------------------------------------

function apply(state) {
  if (me !== state.me) {
    me = state.me;
    localStorage.setItem("sandbox.user", me);
  }
  team = state.team;
  localStorage.setItem("sandbox.user." + team, me);
  teams(state.teams);
  people(state.people);
  channels(state.channels);
  for (const channel of state.channels) draw("pane-" + channel.id, channel.html);
  draw("pane-dm", state.dm.html);
  draw(
    "pane-home",
    state.home ||
      '<p class="empty">The bot publishes your Home tab when you open it (it sends ' +
        "<code>app_home_opened</code>).</p>"
  );
  modal(state.modal);
  engineForm(state.engine, state.people);
  const known = pane && document.querySelector(`.nav[data-pane="${pane}"]`);
  show(known ? pane : "pane-" + state.channels[0].id);
}

// The team switcher, and the banner of a team whose Slack has not installed the bot yet.
function teams(list) {
  const rail = $("#teams");
  const wanted = JSON.stringify(list.map((t) => [t.id, t.installed]));
  if (rail.dataset.teams !== wanted) {
    rail.dataset.teams = wanted;
    rail.innerHTML = "";
    for (const each of list) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "team";
      button.dataset.team = each.id;
      button.dataset.person = each.person;
      button.textContent = each.name;
      if (!each.installed) {
        const off = document.createElement("span");
        off.className = "off";
        off.textContent = "not installed";
        button.append(off);
      }
      rail.append(button);
    }
  }
  for (const button of rail.querySelectorAll(".team")) {
    button.classList.toggle("active", button.dataset.team === team);
    button.setAttribute("aria-pressed", String(button.dataset.team === team));
  }
  const mine = list.find((t) => t.id === team);
  $("#team-name").textContent = mine.name;
  const banner = $("#banner");
  banner.hidden = mine.installed;
  const link = $("#install");
  link.hidden = !mine.install_url;
  if (mine.install_url) link.href = mine.install_url;
  $("#banner-text").textContent = mine.install_url
    ? `trame-bot is not installed in this Slack (${mine.name}). Its operator's install link ` +
      "opens Slack's consent page; Allow, and come back here."
    : `trame-bot is not installed in this Slack (${mine.name}): restart the sandbox for a ` +
      "new install link.";
}

function switchTeam(button) {
  if (button.dataset.team === team) return;
  me = localStorage.getItem("sandbox.user." + button.dataset.team) || button.dataset.person;
  localStorage.setItem("sandbox.user", me);
  pane = null;
  shown = {};
  modalKey = null;
  closeOverlay();
  $("#engine-result").innerHTML = ""; // the other team's workspace answered that
  $("#health-result").innerHTML = "";
  refresh();
}

function people(list) {
  const select = $("#who");
  const wanted = JSON.stringify(list);
  if (select.dataset.people !== wanted) {
    select.dataset.people = wanted;
    select.innerHTML = "";
    for (const person of list) {
      const option = document.createElement("option");
      option.value = person.id;
      option.textContent = `${person.name} (${person.title})`;
      select.append(option);
    }
  }
  select.value = me;
}

function channels(list) {
  const nav = $("#nav-channels");
  const wanted = JSON.stringify(list.map((c) => c.id));
  if (nav.dataset.channels === wanted) return;
  nav.dataset.channels = wanted;
  nav.innerHTML = "";
  for (const element of document.querySelectorAll(".pane.channel")) element.remove();
  for (const channel of list) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "nav";
    button.dataset.pane = "pane-" + channel.id;
    button.dataset.channel = channel.id;
    button.dataset.title = "# " + channel.name;
    button.textContent = "# " + channel.name;
    nav.append(button);
    const div = document.createElement("div");
    div.className = "pane channel";
    div.id = "pane-" + channel.id;
    $("#panes").append(div);
    delete shown[div.id];
  }
  for (const id of ["pane-dm", "pane-home"]) {
    if (document.getElementById(id)) continue;
    const div = document.createElement("div");
    div.className = "pane";
    div.id = id;
    $("#panes").append(div);
  }
  current = null;
}

function draw(id, html) {
  const element = document.getElementById(id);
  if (!element || shown[id] === html) return;
  const first = !(id in shown);
  const atBottom = element.scrollHeight - element.scrollTop - element.clientHeight < 40;
  element.innerHTML = html;
  shown[id] = html;
  if (id !== "pane-home" && (first || atBottom)) element.scrollTop = element.scrollHeight;
}

function show(id) {
  const button = document.querySelector(`.nav[data-pane="${id}"]`);
  if (!button) return;
  pane = id;
  localStorage.setItem("sandbox.pane", id);
  for (const element of document.querySelectorAll(".pane")) element.hidden = element.id !== id;
  for (const element of document.querySelectorAll(".nav")) {
    element.classList.toggle("active", element.dataset.pane === id);
  }
  $("#pane-title").textContent = button.dataset.title;
  $("#composer").hidden = !button.dataset.channel;
  if (current !== id && id !== "pane-home") {
    const element = document.getElementById(id);
    element.scrollTop = element.scrollHeight;
  }
  current = id;
}

function modal(state) {
  const overlay = $("#overlay");
  if (!state) {
    if (overlay.dataset.kind === "modal") closeOverlay();
    modalKey = null;
    return;
  }
  if (state.key === modalKey) return;
  modalKey = state.key;
  openOverlay("modal", state.html);
  const error = $(".has-error textarea, .has-error input, .has-error select", overlay);
  (error || $("input, textarea, select", overlay))?.focus();
}

function openOverlay(kind, html) {
  const overlay = $("#overlay");
  overlay.dataset.kind = kind;
  $("#dialog").innerHTML = html;
  overlay.hidden = false;
}

function closeOverlay() {
  const overlay = $("#overlay");
  overlay.hidden = true;
  overlay.dataset.kind = "";
  $("#dialog").innerHTML = "";
}

function engineForm(state, list) {
  engine = state;
  $("#engine-key").textContent = state.api_key;
  const workflow = $("#engine-workflow");
  const options = state.workflows.map((w) => [w.key, `${w.name} (${w.status})`]);
  fill(workflow, options);
  const member = list.find((p) => p.title === "member");
  fill(
    $("#engine-by"),
    list.map((p) => [p.id, `${p.name} (${p.title})`]),
    member && member.id
  );
  sources();
  fill(
    $("#health-connector"),
    (state.connectors || []).map((c) => [c.key, `${c.key} (${c.health})`])
  );
}

function sources() {
  const chosen = engine.workflows.find((w) => w.key === $("#engine-workflow").value);
  const triggers = chosen ? chosen.triggers : [];
  fill(
    $("#engine-source"),
    [["manual", "manual"], ...triggers.map((t) => ["trigger:" + t, "trigger " + t])]
  );
}

function fill(select, options, preferred) {
  const wanted = JSON.stringify(options);
  if (select.dataset.options === wanted) return;
  const keep = select.dataset.options ? select.value : preferred;
  select.innerHTML = "";
  for (const [value, label] of options) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label;
    select.append(option);
  }
  // Another team's list keeps nothing of the last one: its member asks, as on a first fill.
  for (const value of [keep, preferred]) {
    if (options.some(([each]) => each === value)) {
      select.value = value;
      break;
    }
  }
  select.dataset.options = wanted;
}

// ---- what you do --------------------------------------------------------------------------

function actionOf(button) {
  const action = {
    block_id: button.dataset.blockId,
    action_id: button.dataset.actionId,
    value: button.dataset.value,
  };
  const message = button.closest("[data-ts][data-channel]");
  if (message) return { ...action, channel: message.dataset.channel, ts: message.dataset.ts };
  const view = button.closest("[data-view-id]");
  return view ? { ...action, view_id: view.dataset.viewId } : null;
}

document.addEventListener("click", (event) => {
  const target = event.target.closest("button");
  if (!target) return;
  if (target.matches(".team")) {
    switchTeam(target);
  } else if (target.matches(".nav")) {
    show(target.dataset.pane);
    if (target.dataset.pane === "pane-home") post("home", {});
  } else if (target.matches(".bk-confirm-yes")) {
    const action = pendingAction;
    pendingAction = null;
    closeOverlay();
    if (action) post("action", action);
  } else if (target.matches(".bk-confirm-no")) {
    pendingAction = null;
    closeOverlay();
  } else if (target.matches(".bk-close")) {
    const form = target.closest("[data-view-id]");
    closeOverlay();
    modalKey = null;
    if (form) post("close", { view_id: form.dataset.viewId });
  } else if (target.matches("[data-action-id]")) {
    const action = actionOf(target);
    if (!action) return;
    const dialog = target.parentElement.querySelector(".bk-confirm");
    if (dialog) {
      pendingAction = action;
      openOverlay("confirm", dialog.innerHTML);
    } else {
      post("action", action);
    }
  }
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  event.preventDefault();
  if (form.matches(".bk-modal")) {
    const values = {};
    for (const field of form.querySelectorAll("[name]")) values[field.name] = field.value;
    post("submit", { view_id: form.dataset.viewId, values });
  } else if (form.id === "composer") {
    let text = $("#command").value.trim();
    if (!text) return;
    if (!text.startsWith("/")) text = "/trame " + text;
    const channel = document.querySelector(`.nav[data-pane="${pane}"]`)?.dataset.channel;
    $("#command").value = "";
    post("command", { channel, text });
  } else if (form.id === "engine-form") {
    requestRun();
  } else if (form.id === "health-form") {
    reportHealth();
  }
});

document.addEventListener("change", (event) => {
  if (event.target.id === "who") {
    me = event.target.value;
    localStorage.setItem("sandbox.user", me);
    shown = {};
    modalKey = null;
    closeOverlay();
    if (pane === "pane-home") post("home", {});
    else refresh();
  } else if (event.target.id === "engine-workflow") {
    sources();
  }
});

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && $("#overlay").dataset.kind === "confirm") {
    pendingAction = null;
    closeOverlay();
  }
});

// The engine's own endpoint: a connector breaking (or recovering) is what raises the alert in
// the ops channel, and its recovery notice.
async function reportHealth() {
  const key = $("#health-connector").value;
  const body = { status: $("#health-status").value };
  const error = $("#health-error").value.trim();
  if (error && body.status !== "ok") body.error = error;
  const path = `/api/v1/connectors/${encodeURIComponent(key)}/health`;
  const response = await fetch(path, {
    method: "POST",
    headers: { Authorization: "Bearer " + engine.api_key, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  const result = $("#health-result");
  result.innerHTML = "";
  const line = document.createElement("p");
  line.className = "engine-line";
  line.textContent = `POST ${path} → ${response.status}` + (answer.health ? ` · ${answer.health}` : "");
  const pre = document.createElement("pre");
  pre.textContent = JSON.stringify(answer, null, 2);
  result.append(line, pre);
  refresh();
}

async function requestRun() {
  const key = $("#engine-workflow").value;
  const source = $("#engine-source").value;
  const body = { source: "manual", requested_by: $("#engine-by").value };
  if (source.startsWith("trigger:")) {
    body.source = "trigger";
    body.trigger = source.slice("trigger:".length);
  }
  const path = `/api/v1/workflows/${encodeURIComponent(key)}/runs`;
  const response = await fetch(path, {
    method: "POST",
    headers: { Authorization: "Bearer " + engine.api_key, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  const result = $("#engine-result");
  result.innerHTML = "";
  const line = document.createElement("p");
  line.className = "engine-line";
  line.textContent = `POST ${path} → ${response.status}` + (answer.state ? ` · ${answer.state}` : "");
  const pre = document.createElement("pre");
  pre.textContent = JSON.stringify(answer, null, 2);
  result.append(line, pre);
  refresh();
}

refresh();
setInterval(refresh, POLL_MS);
