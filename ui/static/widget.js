/* assistant chat widget: <script src="https://HOST/widget.js" data-key="PUBLIC_KEY" async></script>
   Optional data attributes: data-color, data-title, data-greeting, data-position (right|left), data-lang (en|zh),
   data-identity-token (the signed-in customer, signed by the website's server: assistant/identity.py).
   Everything lives in a shadow root (no CSS leaks either way); the chat itself is an iframe of HOST/chat/.
   The server refuses keys used from origins they were not made for (and the chat frame refuses to be framed there). */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.dataset.key) { console.warn("assistant widget: data-key is missing"); return; }
  var base = new URL(script.src, window.location.href).origin;
  var key = script.dataset.key;

  function start() {
    var host = document.createElement("assistant-chat-widget");  // not a div: the page's div rules do not match
    host.id = "assistant-widget";
    host.dataset.state = "loading";
    document.body.appendChild(host);
    var root = host.attachShadow({ mode: "open" });
    fetch(base + "/api/widget/config?key=" + encodeURIComponent(key), { credentials: "omit" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (config) { render(host, root, config); })
      .catch(function (error) {
        host.dataset.state = "refused";
        console.warn("assistant widget: this site may not use key " + key.slice(0, 10) + "… (" + error.message + ")");
      });
  }

  function text(value) {
    var span = document.createElement("span");
    span.textContent = value;
    return span.innerHTML;
  }

  function render(host, root, config) {
    var data = script.dataset;
    var color = /^#[0-9a-fA-F]{3,8}$/.test(data.color || "") ? data.color : config.color;
    var lang = (data.lang || navigator.language || "en").toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
    var labels = config.labels[lang];
    var title = data.title || labels.title;
    var greeting = data.greeting || labels.greeting;
    var side = data.position === "left" ? "left" : "right";
    var chatUrl = base + "/chat/?key=" + encodeURIComponent(key) + "&lang=" + lang + "&embed=1" +
      (data.identityToken ? "&identity=" + encodeURIComponent(data.identityToken) : "");
    // inline !important beats the page's own !important rules on the host element
    host.setAttribute("style", "all:initial !important;position:fixed !important;bottom:20px !important;" +
      side + ":20px !important;z-index:2147483000 !important;display:block !important");
    var font = "font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2328;";
    root.innerHTML =
      "<style>" +
      ".panel,.bubble,header,button{" + font + "}" +
      ".bubble{width:60px;height:60px;border-radius:50%;border:0;background:" + color + ";color:#fff;" +
      "box-shadow:0 4px 14px rgba(0,0,0,.25);cursor:pointer;padding:0;display:grid;place-items:center}" +
      ".bubble svg{width:28px;height:28px;fill:#fff}" +
      ".bubble:focus-visible{outline:3px solid #000;outline-offset:2px}" +
      ".panel{position:absolute;bottom:76px;" + side + ":0;width:min(400px,calc(100vw - 40px));" +
      "height:min(620px,calc(100vh - 120px));background:#fff;border-radius:14px;overflow:hidden;" +
      "box-shadow:0 10px 40px rgba(0,0,0,.3);display:flex;flex-direction:column}" +
      ".panel[hidden]{display:none}" +
      "header{background:" + color + ";color:#fff;padding:12px 14px;display:flex;align-items:center;gap:8px}" +
      "header{color:#fff}header strong{font-size:16px;flex:1;color:#fff}" +
      "header small{display:block;font-size:12px;opacity:.9;font-weight:400;color:#fff}" +
      "header .close{background:transparent;border:0;color:#fff;font-size:22px;cursor:pointer;line-height:1}" +
      "iframe{border:0;flex:1;width:100%}" +
      "</style>" +
      "<div class='panel' hidden role='dialog' aria-label='" + text(title) + "'>" +
      "<header><strong>" + text(title) + "<small>" + text(greeting) + "</small></strong>" +
      "<button class='close' aria-label='" + text(labels.close) + "'>×</button></header></div>" +
      "<button class='bubble' aria-label='" + text(labels.open) + "'><svg viewBox='0 0 24 24' aria-hidden='true'>" +
      "<path d='M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z'/></svg></button>";
    var panel = root.querySelector(".panel");
    var frame = null;
    function toggle(open) {
      if (open && !frame) {
        frame = document.createElement("iframe");
        frame.src = chatUrl;
        frame.title = title;
        panel.appendChild(frame);
      }
      panel.hidden = !open;
      host.dataset.state = open ? "open" : "ready";
    }
    root.querySelector(".bubble").addEventListener("click", function () { toggle(panel.hidden); });
    root.querySelector(".close").addEventListener("click", function () { toggle(false); });
    host.dataset.state = "ready";
  }

  if (document.body) { start(); } else { document.addEventListener("DOMContentLoaded", start); }
})();
