// The course's additions to mdBook (book.toml: additional-js).
//
// A code block or table wider than the page scrolls sideways; phones hide
// scroll bars, so course.css draws a shadow on the right edge of each one
// that has more to show. This marks them: .scroll-more on the element that
// does not scroll (the <pre> around a code block, a .scroll-cue div put
// around each table's wrapper), while its content goes on past the edge.
(function () {
    "use strict";
    var pairs = [];

    function update(pair) {
        var el = pair.scroller;
        var more = el.scrollWidth - el.clientWidth - el.scrollLeft > 1;
        pair.cue.classList.toggle("scroll-more", more);
    }

    function watch(scroller, cue) {
        var pair = { scroller: scroller, cue: cue };
        pairs.push(pair);
        scroller.addEventListener("scroll", function () { update(pair); }, { passive: true });
        update(pair);
    }

    function setup() {
        document.querySelectorAll("main pre > code").forEach(function (code) {
            watch(code, code.parentElement);
        });
        document.querySelectorAll("main .table-wrapper").forEach(function (wrapper) {
            var cue = document.createElement("div");
            cue.className = "scroll-cue";
            wrapper.parentNode.insertBefore(cue, wrapper);
            cue.appendChild(wrapper);
            watch(wrapper, cue);
        });
        window.addEventListener("resize", function () { pairs.forEach(update); });
        // Fonts and highlighting change widths after the first layout.
        window.addEventListener("load", function () { pairs.forEach(update); });
    }

    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", setup);
    } else {
        setup();
    }
})();
