// A language picker in the menu bar of every page: English at the root of
// the site, each translation under /LANG/ (see book/i18n.py build). It
// links to the same page in the other language.
(function () {
    "use strict";
    const languages = [["en", "English"], ["es", "Español"], ["ja", "日本語"]];
    const current = document.documentElement.lang || "en";
    const bar = document.querySelector("#mdbook-menu-bar .right-buttons, #menu-bar .right-buttons");
    // mdBook sets path_to_root on every page: from this page to its book's root.
    if (!bar || typeof path_to_root === "undefined") {
        return;
    }
    const bookRoot = new URL(path_to_root || "./", window.location.href);
    const page = window.location.href.slice(bookRoot.href.length);
    const siteRoot = current === "en" ? bookRoot : new URL("../", bookRoot);

    const wrap = document.createElement("div");
    wrap.className = "language-picker";
    const button = document.createElement("button");
    button.className = "icon-button";
    button.type = "button";
    button.title = "Language";
    button.setAttribute("aria-label", "Language");
    button.setAttribute("aria-haspopup", "true");
    button.setAttribute("aria-expanded", "false");
    // A globe, drawn: an emoji may have no font on the reader's machine.
    button.innerHTML =
        '<svg viewBox="0 0 16 16" width="18" height="18" fill="none" stroke="currentColor" stroke-width="1.3" aria-hidden="true">' +
        '<circle cx="8" cy="8" r="6.5"/><ellipse cx="8" cy="8" rx="2.8" ry="6.5"/>' +
        '<path d="M1.5 8h13M2.6 4.5h10.8M2.6 11.5h10.8"/></svg>';
    const list = document.createElement("ul");
    list.className = "theme-popup language-popup";
    list.hidden = true;
    for (const [code, name] of languages) {
        const item = document.createElement("li");
        const link = document.createElement("a");
        link.lang = code;
        link.textContent = name;
        const base = code === "en" ? siteRoot : new URL(code + "/", siteRoot);
        link.href = new URL(page, base).href;
        if (code === current) {
            link.setAttribute("aria-current", "page");
            link.style.fontWeight = "bold";
        }
        item.appendChild(link);
        list.appendChild(item);
    }
    button.addEventListener("click", function (event) {
        event.stopPropagation();
        list.hidden = !list.hidden;
        button.setAttribute("aria-expanded", String(!list.hidden));
    });
    document.addEventListener("click", function () {
        list.hidden = true;
        button.setAttribute("aria-expanded", "false");
    });
    wrap.appendChild(button);
    wrap.appendChild(list);
    bar.insertBefore(wrap, bar.firstChild);
})();
