// The browser script served at /atlassian-connect/all.js and the matching
// listener in the repository page. They give an app's iframe a small part of
// Connect's `AP` API over postMessage: AP.resize, AP.sizeToParent and
// AP.events (on, off, emit), called directly without AP.require.

/** Marks the simulator's postMessage messages so that other messages are ignored. */
export const MESSAGE_CHANNEL = 'bitbucket-simulator';

export const ALL_JS = `(function () {
  'use strict';
  var CHANNEL = ${JSON.stringify(MESSAGE_CHANNEL)};
  var query = new URLSearchParams(window.location.search);
  var hostOrigin = query.get('xdm_e') || (document.referrer ? new URL(document.referrer).origin : '');
  var listeners = {};

  function send(message) {
    if (!hostOrigin || window.parent === window) {
      return;
    }
    message.channel = CHANNEL;
    window.parent.postMessage(message, hostOrigin);
  }

  window.addEventListener('message', function (event) {
    var message = event.data;
    if (event.origin !== hostOrigin || !message || message.channel !== CHANNEL || message.type !== 'event') {
      return;
    }
    (listeners[message.name] || []).slice().forEach(function (listener) {
      listener.apply(null, message.args || []);
    });
  });

  var AP = {
    resize: function (width, height) {
      send({
        type: 'resize',
        width: width === undefined ? '100%' : String(width),
        height: height === undefined ? document.documentElement.scrollHeight + 'px' : String(height)
      });
    },
    sizeToParent: function () {
      send({ type: 'sizeToParent' });
    },
    events: {
      on: function (name, listener) {
        (listeners[name] = listeners[name] || []).push(listener);
      },
      off: function (name, listener) {
        listeners[name] = (listeners[name] || []).filter(function (candidate) { return candidate !== listener; });
      },
      emit: function (name) {
        send({ type: 'event', name: name, args: Array.prototype.slice.call(arguments, 1) });
      }
    }
  };
  window.AP = AP;

  // Like Connect's all.js, resize to the content unless the script tag has data-options="resize:false".
  // scrollHeight never drops below the frame's own height, so resizing cannot loop.
  var script = document.currentScript;
  var options = (script && script.getAttribute('data-options')) || '';
  if (!/resize:\\s*false/.test(options)) {
    var resizeToContent = function () { AP.resize(); };
    if (document.readyState === 'complete') {
      resizeToContent();
    } else {
      window.addEventListener('load', resizeToContent);
    }
    if (typeof ResizeObserver === 'function') {
      new ResizeObserver(resizeToContent).observe(document.body || document.documentElement);
    }
  }
})();
`;

/** Builds the repository page's listener for messages from the app's iframes. */
export function hostPageScript(appOrigin: string): string {
  return `(function () {
  'use strict';
  var CHANNEL = ${JSON.stringify(MESSAGE_CHANNEL)};
  var APP_ORIGIN = ${JSON.stringify(appOrigin)};
  var log = document.getElementById('event-log');

  function frames() {
    return Array.prototype.slice.call(document.querySelectorAll('iframe[data-module-key]'));
  }
  function cssLength(value) {
    var text = String(value);
    if (/^\\d+(\\.\\d+)?$/.test(text)) {
      return text + 'px';
    }
    return /^\\d+(\\.\\d+)?(px|%)$/.test(text) ? text : null;
  }
  function record(line) {
    var item = document.createElement('li');
    item.textContent = line;
    log.appendChild(item);
  }

  window.addEventListener('message', function (event) {
    var message = event.data;
    if (event.origin !== APP_ORIGIN || !message || message.channel !== CHANNEL) {
      return;
    }
    var frame = frames().find(function (candidate) { return candidate.contentWindow === event.source; });
    if (!frame) {
      return;
    }
    var key = frame.getAttribute('data-module-key');
    if (message.type === 'resize') {
      var width = cssLength(message.width);
      var height = cssLength(message.height);
      if (width) { frame.style.width = width; }
      if (height) { frame.style.height = height; }
      record(key + ': resize ' + (width || '-') + ' x ' + (height || '-'));
    } else if (message.type === 'sizeToParent') {
      frame.style.width = '100%';
      frame.style.height = Math.max(150, window.innerHeight - frame.getBoundingClientRect().top - 16) + 'px';
      record(key + ': sizeToParent');
    } else if (message.type === 'event') {
      record(key + ': event ' + message.name);
      frames().forEach(function (other) {
        if (other !== frame && other.contentWindow) {
          other.contentWindow.postMessage({ channel: CHANNEL, type: 'event', name: message.name, args: message.args }, APP_ORIGIN);
        }
      });
    }
  });
})();
`;
}
