// When the tab draws. Changes to the selection come in bursts (a drag, a key held down, a link
// setting several keys): they are taken up once per animation frame. Drawing waits for the
// data, which comes back out of order: a drawing that finishes after a newer one started still
// goes on screen if nothing newer is there, so that moving through steps faster than they load
// shows each step as it arrives, not nothing until the last one has loaded.

// A function that runs `update` at the next animation frame, once however often it is called
// before then.
export function perFrame(update) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      update();
    });
  };
}

// The order of one place's drawings (the view's, the filter card's): each takes a number when
// it starts, and may go on screen only if no later-started one is there already.
export class DrawOrder {
  constructor() {
    this.started = 0;  // the number of the newest drawing started
    this.shown = 0;  // the number of the drawing on screen
  }

  start() {
    this.started += 1;
    return this.started;
  }

  // Whether the drawing numbered `number` may go on screen; if so, it is on screen from now.
  claim(number) {
    if (number < this.shown) return false;
    this.shown = number;
    return true;
  }
}
