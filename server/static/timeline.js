// The timeline's endless scroll and date scrubber (GET /). The page works without this file: "Older
// photos" and "Jump to a month" are plain links; this only follows the first as the reader nears it and
// puts the second's list beside the photos.
'use strict';
(() => {
  const feed = document.getElementById('feed');
  if (!feed) return;
  const parse = (html) => document.createRange().createContextualFragment(html);
  const last = (parent, selector) => {
    const all = parent.querySelectorAll(selector);
    return all.length ? all[all.length - 1] : null;
  };
  // A page ends inside a day as often as not: the next page's first month and day continue the last ones.
  const join = (fragment) => {
    const month = last(feed, ':scope > section.month');
    // (`:scope` means nothing in a fragment's own query: look at its children.)
    const next = [...fragment.children].find((e) => e.matches('section.month'));
    if (month && next && month.dataset.month === next.dataset.month) {
      const day = last(month, ':scope > section.day');
      const nextDay = next.querySelector(':scope > section.day');
      if (day && nextDay && day.dataset.day === nextDay.dataset.day) {
        day.querySelector('ul.grid').append(...nextDay.querySelector('ul.grid').children);
        nextDay.remove();
      }
      month.append(...next.querySelectorAll(':scope > section.day'));
      next.remove();
    }
    feed.append(fragment);
  };
  let busy = false;
  const load = async (link) => {
    if (busy) return;
    busy = true;
    try {
      const url = new URL(link.href);
      url.searchParams.set('partial', 'true');
      const response = await fetch(url, { credentials: 'same-origin' });
      // Signed out meanwhile: the plain link leads through the sign-in.
      if (response.redirected || !response.ok) {
        window.location.assign(link.href);
        return;
      }
      const fragment = parse(await response.text());
      link.remove();
      join(fragment);
      watch();
    } finally {
      busy = false;
    }
  };
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting) {
        observer.unobserve(entry.target);
        load(entry.target);
      }
    }
  }, { rootMargin: '1500px 0px' });
  const watch = () => {
    const more = feed.querySelector(':scope > a.more');
    if (more) observer.observe(more);
  };
  watch();

  const scrubber = document.getElementById('scrubber');
  if (scrubber && scrubber.dataset.src && window.matchMedia('(min-width: 48rem)').matches) {
    fetch(scrubber.dataset.src, { credentials: 'same-origin' })
      .then((r) => (r.ok && !r.redirected ? r.text() : null))
      .then((html) => {
        if (html === null) return;
        scrubber.replaceChildren(parse(html));
        const shown = feed.querySelector('section.month');
        const here = shown && scrubber.querySelector(`a[data-month="${shown.dataset.month}"]`);
        if (here) here.setAttribute('aria-current', 'true');
      });
  }
})();
