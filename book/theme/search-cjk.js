// Search in Japanese: on a page whose language is Japanese, a query is cut
// into words the way book/search_cjk.py cut the page's index: Latin words
// in lower case, and every run of Japanese characters into overlapping
// pairs of characters. mdBook's own cutting, at spaces, finds nothing in
// Japanese (mdBook issue #2393). English pages are left alone.
(function () {
    "use strict";
    if (!/^(ja|zh)/.test(document.documentElement.lang || "")) {
        return;
    }
    const cjk = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f";
    const run = new RegExp("[" + cjk + "]+|[^" + cjk + "]+", "g");
    const isCjk = new RegExp("^[" + cjk + "]");
    function tokens(text) {
        const out = [];
        if (text === null || text === undefined) {
            return out;
        }
        const chunks = String(text).toLowerCase().split(/[\s\-]+/);
        for (const chunk of chunks) {
            for (const part of chunk.match(run) || []) {
                if (isCjk.test(part)) {
                    if (part.length === 1) {
                        out.push(part);
                    }
                    for (let i = 0; i + 1 < part.length; i++) {
                        out.push(part.slice(i, i + 2));
                    }
                } else {
                    const word = part.replace(/^\W+/, "").replace(/\W+$/, "");
                    if (word) {
                        out.push(word);
                    }
                }
            }
        }
        return out;
    }
    function install() {
        if (typeof elasticlunr === "undefined") {
            return false;
        }
        elasticlunr.tokenizer = Object.assign(tokens, {
            seperator: elasticlunr.tokenizer.seperator,
            defaultSeperator: elasticlunr.tokenizer.defaultSeperator,
            setSeperator: function () {},
            resetSeperator: function () {},
            getSeperator: function () { return /[\s\-]+/; },
        });
        return true;
    }
    if (!install()) {
        window.addEventListener("DOMContentLoaded", install);
    }
})();
