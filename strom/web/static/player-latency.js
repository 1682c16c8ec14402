// How far behind live the WebSocket player plays, and how it gets there: a buffer target
// sized by the viewer's own arrival jitter, held by playbackRate. No DOM and no clock of
// its own: times are passed in (seconds), so tests drive it with made-up arrival series.
//
// What it measures. After each append the player reports (now, edge): the wall time and
// the end of the buffered media. `delay = now - edge` would be constant if every chunk
// arrived (and was appended) exactly on time; its spread over the last few seconds is the
// jitter this viewer sees (network, the server, a busy main thread, slow appends), and
// its smallest value is the best arrival: `now - minDelay` estimates where the live edge
// is *now*, between arrivals too. Latency is that estimated edge minus currentTime: it
// does not saw-tooth with each arrival the way "buffered end - currentTime" does.
//
// What it aims for: target = floor + jitterGain * jitter, jumping up at once (and by
// stallBump with each stall: a busy machine starves the decoder, which arrivals do not
// show) and shrinking by at most `decay` s per s when calm (`calm` s after a stall).
// The floor is what Chromium's MSE needs ahead of currentTime: measured on a quiet box
// (bench/RESULTS.md, "A 0.3 s player"), it went to `waiting` with 0.11-0.14 s of media
// still buffered when the target was 0.13 s, and played a minute without a stall at 0.2.
// On a busy box a starved decoder stalls with the media there: the stall bump is for
// that, as arrivals do not show it.
//
// How it gets there: playbackRate 1 + gain * (latency - target), between minRate and
// maxRate (pitch is preserved: `preservesPitch` defaults to true), 1 inside a dead band;
// a seek only when more than `seekBehind` s behind the target. The LL-HLS player steers
// by the same rate (catchUpRate) towards hls.js's own target: hls.js only changes the
// rate with more than 1 s buffered, which a target of two parts (0.67 s) never has.
//
// A join starts with a burst (the server sends the GOP so far at once): those arrivals
// are not jitter. The stream counts as live once the media arrived over the last
// `paceSpan` s of wall time is no more than `paceRatio` times that (or `maxBurst` s after
// the first arrival). Measured over a span, not arrival by arrival: on a busy machine
// each append of the burst can take half a frame's time, which looked paced pair by pair
// and let the burst's old media count as a second of jitter.

export const LATENCY = Object.freeze({
  floor: 0.2, // s ahead of the playhead at best: Chromium stalled with 0.11-0.14 s there
  jitterGain: 1.25, // target = floor + jitterGain * jitter
  jitterWindow: 6, // s of arrivals the jitter and the best arrival are taken over
  stallBump: 0.15, // s each stall adds to the target
  calm: 30, // s after a stall before the target may shrink again
  decay: 0.02, // s per s the target may shrink
  maxTarget: 3, // s
  gain: 0.5, // playbackRate per s away from the target
  deadBand: 0.02, // s either side of the target where the rate is 1
  rateStep: 0.01, // rates are rounded to this, so small errors do not churn them
  minRate: 0.95,
  maxRate: 1.1,
  seekBehind: 2, // s behind the target past which catching up by rate is too slow
  paceSpan: 0.15, // s of arrivals whose media must come at about real time...
  paceRatio: 1.5, // ...no faster than this: then the join burst is over
  maxBurst: 3, // s after the first arrival the burst counts as over anyway
});

export class LiveLatency {
  constructor(settings = LATENCY) {
    this.s = settings;
    this.arrivals = []; // [now, delay] of live arrivals, oldest first
    this.first = null; // [now, edge] of the first arrival
    this.last = null; // [now, edge] of the latest arrival
    this.recent = []; // [now, edge] of the arrivals of the last paceSpan s, before live
    this.live = false;
    this.held = settings.floor; // the target, shrinking slowly
    this.heldAt = null;
    this.stalledAt = -Infinity;
  }

  // One append done: `now` wall time (s), `edge` the buffered end (media s) after it.
  arrival(now, edge) {
    this.last = [now, edge];
    if (!this.first) this.first = [now, edge];
    if (!this.live) {
      const recent = this.recent;
      recent.push([now, edge]);
      // recent[0]: the newest arrival at least paceSpan s old (once there is one)
      while (recent.length > 2 && now - recent[1][0] >= this.s.paceSpan) recent.shift();
      const wall = now - recent[0][0];
      const paced = wall >= this.s.paceSpan && edge - recent[0][1] <= wall * this.s.paceRatio;
      if (!paced && now - this.first[0] < this.s.maxBurst) return;
      this.live = true;
      this.recent = [];
    }
    this.arrivals.push([now, now - edge]);
    const from = now - this.s.jitterWindow;
    while (this.arrivals.length > 1 && this.arrivals[0][0] < from) this.arrivals.shift();
  }

  // The buffer ran dry while playing: ask for more from now on. Stalls that come again
  // before it is calm add up.
  stall(now) {
    this.held = Math.min(this.s.maxTarget, this.target(now) + this.s.stallBump);
    this.stalledAt = now;
  }

  // Delay spread over the window: [best delay, jitter], or null before the stream is live.
  spread() {
    if (!this.arrivals.length) return null;
    let low = Infinity;
    let high = -Infinity;
    for (const [, delay] of this.arrivals) {
      low = Math.min(low, delay);
      high = Math.max(high, delay);
    }
    return [low, high - low];
  }

  jitter() {
    return this.spread()?.[1] ?? 0;
  }

  target(now) {
    const s = this.s;
    const wanted = Math.min(s.maxTarget, s.floor + s.jitterGain * this.jitter());
    const from = Math.max(this.heldAt ?? now, this.stalledAt + s.calm);
    this.held = Math.max(wanted, this.held - s.decay * Math.max(0, now - from));
    this.heldAt = now;
    return this.held;
  }

  // Where the live edge is now (media s): the best arrival, carried on by the clock.
  liveEdge(now) {
    const spread = this.spread();
    return spread ? now - spread[0] : null;
  }

  latency(now, currentTime) {
    const edge = this.liveEdge(now);
    return edge === null ? null : edge - currentTime;
  }

  // What to do at `now` with the playhead at `currentTime` and `ahead` s buffered past
  // it: {rate} or {seekTo}, or null before the stream is live.
  steer(now, currentTime, ahead) {
    const latency = this.latency(now, currentTime);
    if (latency === null) return null;
    const s = this.s;
    const target = this.target(now);
    const error = latency - target;
    if (error > s.seekBehind) return { seekTo: this.liveEdge(now) - target };
    return { rate: catchUpRate(error, ahead, s) };
  }
}

// The playbackRate for a playhead `error` s further behind live than the target (< 0:
// closer), with `ahead` s buffered: proportional, rounded, bounded, 1 inside the dead
// band, and no faster than 1 on an almost empty buffer (that would only stall sooner:
// the media is late, not the playhead).
export function catchUpRate(error, ahead, s = LATENCY) {
  if (Math.abs(error) <= s.deadBand || (error > 0 && !(ahead > s.floor / 2))) return 1;
  const rate = Math.round((1 + s.gain * error) / s.rateStep) * s.rateStep;
  return Math.min(s.maxRate, Math.max(s.minRate, Number(rate.toFixed(3))));
}
