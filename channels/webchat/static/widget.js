/*
 * chatcrm web chat widget. One tag on any page of the shop's site:
 *   <script src="https://crm.example.com/webchat/widget.js" async
 *           data-title="Chat with us" data-color="#0f766e" data-lang="en"></script>
 * No framework, no build step, no inline script or style on the host page. Everything lives in
 * a Shadow DOM (the page's CSS cannot reach in, ours cannot leak out), and every text from the
 * server is put in the page with textContent, never as HTML. The visitor's token is kept in
 * localStorage; messages go by POST, replies come over server-sent events.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__chatcrmWebchat) return;
  window.__chatcrmWebchat = true;

  var base = script.src.replace(/\/webchat\/widget\.js(?:[?#].*)?$/, "");
  var api = base + "/webchat";
  var data = script.dataset || {};
  var colour = /^#[0-9a-fA-F]{3,8}$/.test(data.color || "") ? data.color : "#2563eb";
  var lang = String(data.lang || navigator.language || "en").slice(0, 2).toLowerCase();
  var storeKey = "chatcrm-webchat:" + base;

  var state = {
    token: load(), texts: {}, limits: {}, contact: {}, known: false,
    messages: {}, order: [], lastRead: 0, source: null, retry: 1000, open: false,
    earliest: null, busy: false
  };
  var ui = {};

  function load() {
    try { return window.localStorage.getItem(storeKey); } catch (e) { return null; }
  }
  function keep(token) {
    try {
      if (token) window.localStorage.setItem(storeKey, token);
      else window.localStorage.removeItem(storeKey);
    } catch (e) { /* storage off: the visit lasts as long as the page */ }
  }
  function text(key, values) {
    var s = state.texts[key] || state.texts.error || "";
    Object.keys(values || {}).forEach(function (k) { s = s.split("{" + k + "}").join(values[k]); });
    return s;
  }
  function newId() {
    var bytes = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function el(tag, cls, content) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (content != null) node.textContent = content;
    return node;
  }
  // Icons as SVG paths: emoji fonts are missing on many systems.
  var ICONS = {
    chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
    clip: "M16.5 6.5l-7.8 7.8a2 2 0 0 0 2.8 2.8l7.8-7.8a4 4 0 0 0-5.6-5.6L5.9 11.5a6 6 0 0 0 8.5 8.5l6.4-6.4",
    send: "M3 20l18-8L3 4v6l12 2-12 2z"
  };
  function icon(name) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("class", "icon");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICONS[name]);
    svg.appendChild(path);
    return svg;
  }
  function safeUrl(url) {
    try {
      var u = new URL(url, base);
      return (u.protocol === "https:" || u.protocol === "http:") ? u.href : null;
    } catch (e) { return null; }
  }

  // --- calls ---------------------------------------------------------------------------

  function call(method, path, body, isForm) {
    var headers = {};
    if (state.token) headers.Authorization = "Bearer " + state.token;
    if (body && !isForm) headers["Content-Type"] = "application/json";
    return fetch(api + path, {
      method: method, headers: headers, mode: "cors", credentials: "omit",
      body: body ? (isForm ? body : JSON.stringify(body)) : undefined
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (json) {
        if (!r.ok) { json.status = r.status; throw json; }
        return json;
      });
    });
  }

  function session() {
    var had = !!state.token;
    return call("POST", "/session", { language: lang }).catch(function (err) {
      if (err && (err.status === 401 || err.status === 403) && state.token) {
        state.token = null; keep(null);  // refused: start again as a new visitor
        return call("POST", "/session", { language: lang }).then(function (s) {
          if (had) s.restarted = true;
          return s;
        });
      }
      throw err;
    }).then(function (s) {
      state.token = s.token; keep(s.token);
      state.texts = s.texts || {}; state.limits = s.limits || {};
      state.contact = s.contact || {}; state.known = !!s.known;
      return s;
    });
  }

  function problem(err) {
    var code = err && err.error;
    var values = { limit: code === "too_large" ? state.limits.bytes_text : state.limits.text,
                   left: err && err.left != null ? err.left : "" };
    var key = code && state.texts["error_" + code] ? "error_" + code : "error";
    notice(text(key, values));
  }

  function notice(message) {
    ui.notice.textContent = message || "";
    ui.notice.hidden = !message;
  }

  // --- messages ------------------------------------------------------------------------

  function add(m) {
    if (!m || typeof m.id !== "number") return;
    var known = state.messages[m.id];
    state.messages[m.id] = m;
    if (!known) {
      state.order.push(m.id);
      state.order.sort(function (a, b) { return a - b; });
      if (m.from === "visitor") state.known = true;
    }
    if (state.earliest === null || m.id < state.earliest) state.earliest = m.id;
    draw(m, known);
  }

  function draw(m, known) {
    var item = el("li", "msg from-" + (m.from === "visitor" ? "visitor" : m.from === "bot" ? "bot" : "team"));
    item.setAttribute("data-id", String(m.id));
    if (m.from !== "visitor") {
      item.appendChild(el("span", "who", m.from === "visitor" ? text("you") : text("team")));
    }
    var body = el("div", "body");
    linkify(body, m.text || "");
    item.appendChild(body);
    (m.files || []).forEach(function (f) {
      var url = f.url ? safeUrl(f.url) : null;
      if (url && f.image) {
        var a = el("a", "file");
        a.href = url; a.target = "_blank"; a.rel = "noopener noreferrer";
        var img = el("img", "picture");
        img.src = url; img.alt = f.name || text("image"); img.loading = "lazy";
        a.appendChild(img);
        item.appendChild(a);
      } else if (url) {
        var link = el("a", "file", "📎 " + (f.name || "file"));
        link.href = url; link.target = "_blank"; link.rel = "noopener noreferrer";
        item.appendChild(link);
      } else {
        item.appendChild(el("span", "file", "📎 " + (f.name || "file")));
      }
    });
    var time = el("time", "at", when(m.at));
    time.setAttribute("datetime", m.at || "");
    item.appendChild(time);
    var old = ui.list.querySelector('li[data-id="' + m.id + '"]');
    if (old) {
      ui.list.replaceChild(item, old);
    } else {
      var next = null;
      for (var i = 0; i < ui.list.children.length; i++) {
        if (Number(ui.list.children[i].getAttribute("data-id")) > m.id) { next = ui.list.children[i]; break; }
      }
      ui.list.insertBefore(item, next);
      if (!next) ui.log.scrollTop = ui.log.scrollHeight;
    }
    ui.empty.hidden = state.order.length > 0;
    drawChoices();
    drawContact();
    if (!known) markRead();
  }

  function linkify(node, value) {
    var parts = value.split(/(https?:\/\/[^\s<>"']+)/);
    parts.forEach(function (part, i) {
      if (i % 2 === 1 && safeUrl(part)) {
        var a = el("a", "", part);
        a.href = safeUrl(part); a.target = "_blank"; a.rel = "noopener noreferrer nofollow";
        node.appendChild(a);
      } else if (part) {
        node.appendChild(document.createTextNode(part));
      }
    });
  }

  function when(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    return d.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
  }

  function drawChoices() {
    ui.choices.textContent = "";
    var last = state.messages[state.order[state.order.length - 1]];
    if (!last || last.from === "visitor" || !last.choices || !last.choices.length) return;
    last.choices.forEach(function (c) {
      var b = el("button", "choice", c.label);
      b.type = "button";
      b.setAttribute("data-action", c.action);
      b.addEventListener("click", function () { send({ action: c.action }); });
      ui.choices.appendChild(b);
    });
  }

  function drawContact() {
    var email = !!state.contact.email, sms = !!state.contact.sms;
    var which = email && sms ? "" : email ? "email_" : "sms_";
    ui.contactLink.hidden = !(state.known && (email || sms)) || !ui.contact.hidden || !ui.code.hidden;
    ui.contactLink.textContent = text("contact_" + which + "link");
    ui.contactPrompt.textContent = text("contact_" + which + "prompt");
  }

  function markRead() {
    if (!state.open || document.visibilityState !== "visible" || !state.token) return;
    var top = 0;
    state.order.forEach(function (id) { if (state.messages[id].from !== "visitor") top = Math.max(top, id); });
    if (top <= state.lastRead) return;
    state.lastRead = top;
    call("POST", "/read", { up_to: top }).catch(function () { state.lastRead = 0; });
  }

  function history(before) {
    var first = state.earliest === null;
    return call("GET", "/history" + (before ? "?before=" + before : "")).then(function (h) {
      (h.messages || []).forEach(add);
      if (before || first) ui.earlier.hidden = !h.more;
    });
  }

  function send(body, form) {
    if (state.busy) return Promise.resolve();
    state.busy = true; ui.send.disabled = true;
    notice("");
    var request;
    if (form) {
      form.append("client_id", newId()); form.append("language", lang);
      request = call("POST", "/upload", form, true);
    } else {
      body.client_id = newId(); body.language = lang;
      request = call("POST", "/messages", body);
    }
    return request.then(function (r) {
      var first = !state.known;
      add(r.message);
      // Now a customer: listen again, as them (the stream may be in another process, which
      // did not see this message make them one); "ready" fetches what came meanwhile.
      if (first) connect();
      return true;
    }, function (err) {
      if (err && (err.error === "token" || err.error === "expired")) restart();
      problem(err);
      return false;
    }).then(function (ok) {
      state.busy = false; ui.send.disabled = false;
      return ok;
    });
  }

  // --- the live stream -----------------------------------------------------------------

  function connect() {
    if (state.source) state.source.close();
    var source = new EventSource(api + "/events?token=" + encodeURIComponent(state.token));
    state.source = source;
    source.addEventListener("ready", function () {
      state.retry = 1000;
      ui.status.hidden = true;
      history();  // whatever came while the stream was away
    });
    source.addEventListener("message", function (e) {
      try { add(JSON.parse(e.data)); } catch (err) { /* not ours */ }
    });
    source.onerror = function () {
      ui.status.hidden = false;
      if (source.readyState === 2) {  // closed for good (refused): a new session, then again
        state.source = null;
        setTimeout(restart, state.retry);
        state.retry = Math.min(state.retry * 2, 30000);
      }
    };
  }

  function restart() {
    return session().then(function (s) {
      if (s.restarted) { reset(); notice(text("error_session")); }
      connect();
    }, function () {
      setTimeout(restart, state.retry);
      state.retry = Math.min(state.retry * 2, 30000);
    });
  }

  function reset() {
    state.messages = {}; state.order = []; state.lastRead = 0; state.earliest = null;
    ui.list.textContent = ""; ui.empty.hidden = false; ui.choices.textContent = "";
  }

  // --- the panel -----------------------------------------------------------------------

  function build() {
    var host = el("div");
    host.id = "chatcrm-webchat";
    host.style.setProperty("--wc-accent", colour);
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    var css = el("link");
    css.rel = "stylesheet"; css.href = api + "/widget.css";
    root.appendChild(css);
    var wrap = ui.wrap = el("div", "wc");
    wrap.setAttribute("lang", lang);

    ui.launcher = el("button", "launcher");
    ui.launcher.type = "button";
    ui.launcher.appendChild(icon("chat"));
    ui.panel = el("section", "panel");
    ui.panel.setAttribute("role", "dialog");
    ui.panel.hidden = true;

    var head = el("header", "head");
    ui.title = el("span", "title");
    ui.menu = el("button", "menu", "☰");
    ui.menu.type = "button";
    ui.close = el("button", "close", "×");
    ui.close.type = "button";
    head.appendChild(ui.title); head.appendChild(ui.menu); head.appendChild(ui.close);

    ui.status = el("div", "status");
    ui.log = el("div", "log");
    ui.log.setAttribute("role", "log");
    ui.log.setAttribute("aria-live", "polite");
    ui.earlier = el("button", "earlier");
    ui.earlier.type = "button"; ui.earlier.hidden = true;
    ui.list = el("ol", "messages");
    ui.empty = el("p", "empty");
    ui.log.appendChild(ui.earlier); ui.log.appendChild(ui.list); ui.log.appendChild(ui.empty);

    ui.choices = el("div", "choices");
    ui.notice = el("div", "notice");
    ui.notice.setAttribute("role", "alert"); ui.notice.hidden = true;

    ui.contactLink = el("button", "contact-link");
    ui.contactLink.type = "button"; ui.contactLink.hidden = true;
    ui.contact = el("form", "contact");
    ui.contact.hidden = true;
    ui.contactPrompt = el("p", "prompt");
    ui.address = el("input", "address");
    ui.address.name = "address"; ui.address.autocomplete = "email";
    ui.contactSend = el("button", "primary"); ui.contactSend.type = "submit";
    ui.contactCancel = el("button", "cancel"); ui.contactCancel.type = "button";
    [ui.contactPrompt, ui.address, ui.contactSend, ui.contactCancel].forEach(function (n) { ui.contact.appendChild(n); });
    ui.code = el("form", "code");
    ui.code.hidden = true;
    ui.codePrompt = el("p", "prompt");
    ui.codeInput = el("input", "code-input");
    ui.codeInput.name = "code"; ui.codeInput.inputMode = "numeric"; ui.codeInput.autocomplete = "one-time-code";
    ui.codeSend = el("button", "primary"); ui.codeSend.type = "submit";
    ui.codeCancel = el("button", "cancel"); ui.codeCancel.type = "button";
    [ui.codePrompt, ui.codeInput, ui.codeSend, ui.codeCancel].forEach(function (n) { ui.code.appendChild(n); });

    ui.composer = el("form", "composer");
    ui.attach = el("label", "attach");
    ui.attach.appendChild(icon("clip"));
    ui.file = el("input");
    ui.file.type = "file"; ui.file.accept = "image/png,image/jpeg,image/gif,image/webp";
    ui.attach.appendChild(ui.file);
    ui.input = el("textarea", "input");
    ui.input.rows = 1; ui.input.name = "text";
    ui.send = el("button", "send");
    ui.send.type = "submit";
    ui.send.appendChild(icon("send"));
    [ui.attach, ui.input, ui.send].forEach(function (n) { ui.composer.appendChild(n); });

    [head, ui.status, ui.log, ui.choices, ui.notice, ui.contactLink, ui.contact, ui.code, ui.composer]
      .forEach(function (n) { ui.panel.appendChild(n); });
    wrap.appendChild(ui.panel); wrap.appendChild(ui.launcher);
    root.appendChild(wrap);
    document.body.appendChild(host);
    wire();
  }

  function words() {
    var title = data.title || text("title");
    ui.title.textContent = title;
    ui.panel.setAttribute("aria-label", title);
    ui.launcher.setAttribute("aria-label", text("open"));
    ui.launcher.title = text("open");
    ui.close.setAttribute("aria-label", text("close"));
    ui.menu.setAttribute("aria-label", text("menu"));
    ui.menu.title = text("menu");
    ui.status.textContent = text("offline");
    ui.earlier.textContent = text("earlier");
    ui.empty.textContent = text("empty");
    ui.attach.title = text("attach");
    ui.file.setAttribute("aria-label", text("attach"));
    ui.input.placeholder = text("placeholder");
    ui.input.setAttribute("aria-label", text("placeholder"));
    ui.send.setAttribute("aria-label", text("send"));
    ui.contactSend.textContent = text("contact_send");
    ui.contactCancel.textContent = text("cancel");
    ui.codeSend.textContent = text("code_send");
    ui.codeCancel.textContent = text("cancel");
    ui.input.maxLength = state.limits.text || 4000;
    drawContact();
  }

  function toggle(open) {
    state.open = open;
    ui.panel.hidden = !open;
    ui.wrap.classList.toggle("open", open);
    ui.launcher.setAttribute("aria-expanded", String(open));
    if (open) { ui.input.focus(); markRead(); }
  }

  function wire() {
    ui.launcher.addEventListener("click", function () { toggle(!state.open); });
    ui.close.addEventListener("click", function () { toggle(false); });
    ui.menu.addEventListener("click", function () { send({ action: "menu" }); });
    ui.earlier.addEventListener("click", function () { history(state.earliest); });
    ui.composer.addEventListener("submit", function (e) {
      e.preventDefault();
      var value = ui.input.value.trim();
      if (!value) return;
      send({ text: value }).then(function (ok) { if (ok) ui.input.value = ""; });
    });
    ui.input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        ui.composer.requestSubmit ? ui.composer.requestSubmit() : ui.send.click();
      }
    });
    ui.file.addEventListener("change", function () {
      var f = ui.file.files && ui.file.files[0];
      ui.file.value = "";
      if (!f) return;
      if (state.limits.bytes && f.size > state.limits.bytes) { problem({ error: "too_large" }); return; }
      var form = new FormData();
      form.append("text", ui.input.value.trim());
      form.append("file", f, f.name);
      send(null, form).then(function (ok) { if (ok) ui.input.value = ""; });
    });
    ui.contactLink.addEventListener("click", function () {
      ui.contact.hidden = false; drawContact(); ui.address.focus();
    });
    ui.contactCancel.addEventListener("click", function () { ui.contact.hidden = true; drawContact(); });
    ui.codeCancel.addEventListener("click", function () { ui.code.hidden = true; drawContact(); });
    ui.contact.addEventListener("submit", function (e) {
      e.preventDefault();
      notice("");
      call("POST", "/contact", { address: ui.address.value, language: lang }).then(function (r) {
        ui.contact.hidden = true; ui.code.hidden = false;
        ui.codePrompt.textContent = text("code_prompt", { address: r.address });
        ui.codeInput.value = ""; ui.codeInput.focus();
        drawContact();
      }, problem);
    });
    ui.code.addEventListener("submit", function (e) {
      e.preventDefault();
      notice("");
      call("POST", "/contact/confirm", { code: ui.codeInput.value, language: lang }).then(function (r) {
        ui.code.hidden = true;
        notice(text("linked", { address: r.address }));
        drawContact();
        connect();  // a merge may have made the visitor another customer: listen as them
      }, function (err) {
        if (err && err.error === "no_code") { ui.code.hidden = true; drawContact(); }
        problem(err);
      });
    });
    document.addEventListener("visibilitychange", markRead);
  }

  function start() {
    build();
    session().then(function (s) {
      words();
      if (s.restarted) notice(text("error_session"));
      if (data.open === "true") toggle(true);
      connect();
    }, function (err) {
      words();
      problem(err);
      setTimeout(restart, state.retry);
    });
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
