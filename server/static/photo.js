// The photo page (/photo/{id}). Everything works without this file: previous, next and back are plain links.
// Here ← and → follow the page's rel=prev/rel=next links and Escape its "All photos" link, and the Live
// Photo's button plays its motion once, muted, over the still (pressed again, it stops).
'use strict';
(function () {
  var keys = { ArrowLeft: 'a[rel=prev]', ArrowRight: 'a[rel=next]', Escape: 'a.back' };
  document.addEventListener('keydown', function (event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    var target = event.target;
    // Keys typed into a field, or given to a playing video's own controls, stay theirs.
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT|VIDEO|AUDIO)$/.test(target.tagName))) return;
    var link = keys[event.key] && document.querySelector(keys[event.key]);
    if (!link) return;
    event.preventDefault();
    location.assign(link.href);
  });

  var video = document.querySelector('video.live');
  var button = document.querySelector('button.live-play');
  if (!video || !button) return;
  function play() {
    video.hidden = false;
    button.setAttribute('aria-pressed', 'true');
    var started = video.play();
    if (started && started.catch) started.catch(stop);
  }
  function stop() {
    video.pause();
    video.currentTime = 0;
    video.hidden = true;
    button.setAttribute('aria-pressed', 'false');
  }
  button.hidden = false;
  button.addEventListener('click', function () {
    if (button.getAttribute('aria-pressed') === 'true') stop(); else play();
  });
  video.addEventListener('ended', stop);
})();
