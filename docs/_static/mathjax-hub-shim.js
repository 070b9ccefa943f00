// MathJax 3 for the course website, with the one MathJax 2 call ipywidgets still makes.
//
// Sphinx inlines this file after `window.MathJax = {...}` (conf.py's mathjax3_config) and before
// loading MathJax 3. ipywidgets' renderer typesets widget labels with
// `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`, an API that MathJax 3 removed, so a
// label rendered without this shim throws. `Hub.Queue` is given both to the configuration object
// (widgets may render before MathJax has started) and, once MathJax has started, to MathJax 3
// itself; either way it typesets the element with MathJax 3.
(function () {
  "use strict";
  var hub = {
    Queue: function () {
      for (var i = 0; i < arguments.length; i++) {
        var job = arguments[i];
        var element = Array.isArray(job) ? job[2] : null;
        if (!element) continue;
        var mj = window.MathJax;
        var ready = mj && mj.startup && mj.startup.promise ? mj.startup.promise : null;
        if (!ready || !mj.typesetPromise) continue; // MathJax 3 typesets the page when it starts
        ready.then(function (el) {
          return function () { return window.MathJax.typesetPromise([el]); };
        }(element));
      }
    },
  };
  var config = window.MathJax || {};
  config.Hub = hub;
  config.startup = config.startup || {};
  config.startup.ready = function () {
    window.MathJax.startup.defaultReady();
    window.MathJax.Hub = hub;
  };
  window.MathJax = config;
})();
