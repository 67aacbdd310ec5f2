//! Render functions of the live view, drawn on ratatui's `TestBackend` and compared with
//! reviewed snapshots (`tests/snapshots/`).

use coppelia_bridge::output::fixtures::{sample_run_snapshot, sample_snapshot_series};
use coppelia_bridge::output::tui::widgets;
use coppelia_bridge::output::{RunInfo, ViewState};
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::{Frame, Terminal};

fn info(duration_s: Option<f64>) -> RunInfo {
    RunInfo {
        instance: "lab-1".to_owned(),
        duration_s,
        listen: "udp 127.0.0.1:8888".to_owned(),
    }
}

fn draw(width: u16, height: u16, f: impl FnOnce(&mut Frame, Rect)) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| f(frame, frame.area())).unwrap();
    terminal
}

fn state_with_history() -> ViewState {
    let mut series = sample_snapshot_series(40).into_iter();
    let mut state = ViewState::new(series.next().unwrap());
    for s in series {
        state.observe(s);
    }
    state.observe(sample_run_snapshot());
    state
}

#[test]
fn header_of_a_bounded_run_shows_sim_state_times_and_progress() {
    let state = ViewState::new(sample_run_snapshot());
    let t = draw(120, 5, |f, a| {
        widgets::render_header(f, a, &state, &info(Some(30.0)))
    });
    insta::assert_snapshot!("header_bounded", t.backend());
}

#[test]
fn header_without_remote_api_or_duration() {
    let mut snap = sample_run_snapshot();
    snap.sim = None;
    let mut state = ViewState::new(snap);
    state.frozen = true;
    let t = draw(120, 4, |f, a| {
        widgets::render_header(f, a, &state, &info(None))
    });
    insta::assert_snapshot!("header_unbounded_frozen", t.backend());
}

#[test]
fn table_marks_the_off_target_row_and_shows_dashes_for_the_legacy_dummy() {
    let state = ViewState::new(sample_run_snapshot());
    let t = draw(120, 7, |f, a| widgets::render_table(f, a, &state));
    insta::assert_snapshot!("table", t.backend());
    // Row of Dummy1 (third line: border, header, Dummy0, Dummy1) is coloured.
    let buf = t.backend().buffer();
    let cell = buf.cell((5, 3)).unwrap();
    assert_eq!(cell.fg, Color::LightRed, "off-target row highlighted");
    assert_ne!(buf.cell((5, 2)).unwrap().fg, Color::LightRed);
}

#[test]
fn detail_pane_of_the_selected_dummy_shows_percentiles() {
    let mut state = ViewState::new(sample_run_snapshot());
    state.selected = Some(1);
    let t = draw(70, 14, |f, a| widgets::render_detail(f, a, &state));
    insta::assert_snapshot!("detail_tcp", t.backend());
}

#[test]
fn detail_pane_of_a_legacy_dummy_says_latency_is_unavailable() {
    let mut state = ViewState::new(sample_run_snapshot());
    state.selected = Some(2);
    let t = draw(70, 10, |f, a| widgets::render_detail(f, a, &state));
    insta::assert_snapshot!("detail_legacy", t.backend());
}

#[test]
fn detail_pane_of_an_echo_dummy_shows_its_clock_offset() {
    let mut snap = sample_run_snapshot();
    snap.dummies[1].clock = Some(coppelia_bridge::metrics::ClockOffsetStats {
        offset_s: 0.2,
        bound_s: 0.0003,
        min_delay_s: 0.0006,
        exchanges: 492,
        window: 64,
        consistent: true,
        same_host: false,
        offset_significant: true,
        latency_uncertain: true,
    });
    let mut state = ViewState::new(snap);
    state.selected = Some(1);
    let t = draw(80, 14, |f, a| widgets::render_detail(f, a, &state));
    let text = format!("{:?}", t.backend());
    assert!(
        text.contains(
            "clock offset 200.000 ms ± 0.300 ms (492 exchanges) · latency vs clock: offset"
        ),
        "{text}"
    );
}

#[test]
fn sparklines_draw_the_recorded_history() {
    let state = state_with_history();
    let t = draw(50, 12, |f, a| widgets::render_sparklines(f, a, &state));
    insta::assert_snapshot!("sparklines", t.backend());
}

#[test]
fn whole_screen() {
    let state = state_with_history();
    let t = draw(120, 34, |f, _| {
        widgets::render(f, &state, &info(Some(30.0)))
    });
    insta::assert_snapshot!("screen", t.backend());
}

/// 40 dummies (the fixture's three, repeated with new ids and names).
fn many_dummies(n: u32) -> coppelia_bridge::metrics::RunSnapshot {
    let mut snap = sample_run_snapshot();
    let base = snap.dummies.clone();
    snap.dummies = (0..n)
        .map(|i| {
            let mut d = base[i as usize % base.len()].clone();
            d.id = i;
            d.name = format!("D{i:02}");
            d
        })
        .collect();
    snap
}

#[test]
fn the_table_takes_the_height_it_needs_and_the_rest_goes_below() {
    let state = ViewState::new(sample_run_snapshot());
    let area = Rect::new(0, 0, 120, 40);
    let l = widgets::screen_layout(area, &state, &info(Some(30.0)));
    assert_eq!(l.table.height, 3 + 3, "borders + header + 3 dummies");
    assert_eq!(l.table_rows(), 3);
    assert_eq!(
        l.bottom.height,
        40 - 5 - 6 - 1,
        "the sparklines get the rest"
    );
    let state = ViewState::new(many_dummies(40));
    let l = widgets::screen_layout(area, &state, &info(Some(30.0)));
    assert_eq!(
        l.bottom.height, 12,
        "many dummies: the bottom keeps its 12 rows"
    );
    assert_eq!(l.table_rows(), 40 - 5 - 1 - 12 - 3);
}

/// A scripted key sequence on 40 dummies in a 120 × 30 terminal: sort by RTF (worst first),
/// go to the top, page down, freeze, quit; the screen after each step.
#[test]
fn scripted_keys_sort_page_and_freeze() {
    use coppelia_bridge::output::tui::on_key;
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let key = |c: KeyCode| KeyEvent::new(c, KeyModifiers::NONE);
    let mut state = ViewState::new(many_dummies(40));
    let screen = |state: &mut ViewState| {
        let t = draw(120, 30, |f, a| {
            state.page_rows = widgets::screen_layout(a, state, &info(None)).table_rows();
            widgets::render(f, state, &info(None))
        });
        t.backend().to_string()
    };
    let first = screen(&mut state);
    assert!(first.contains("rows 1–10 of 40"), "{first}");
    assert_eq!(state.page_rows, 10);
    for c in [KeyCode::Char('s'), KeyCode::Char('s')] {
        assert_eq!(on_key(&mut state, key(c)), None);
    }
    let sorted = screen(&mut state);
    assert!(sorted.contains("sort: RTF 1s ↑"), "{sorted}");
    assert_eq!(state.sorted()[0].name, "D01", "lowest 1 s RTF first");
    on_key(&mut state, key(KeyCode::Home));
    assert_eq!(state.selected_index(), Some(0));
    assert!(on_key(&mut state, key(KeyCode::PageDown)).is_none());
    assert_eq!(state.selected_index(), Some(10), "one page down");
    let paged = screen(&mut state);
    assert!(paged.contains("rows 2–11 of 40"), "{paged}");
    on_key(&mut state, key(KeyCode::Char('p')));
    let frozen = screen(&mut state);
    assert!(
        frozen.contains("FROZEN (p)") && frozen.contains("p resume"),
        "{frozen}"
    );
    insta::assert_snapshot!("scripted_keys_frozen", frozen);
    assert_eq!(
        on_key(&mut state, key(KeyCode::Char('q'))),
        Some(coppelia_bridge::output::UiAction::Quit)
    );
}

#[test]
fn rtf_sparklines_mark_the_target_on_a_fixed_scale() {
    let mut state = state_with_history();
    state.target_rtf = 0.5;
    let t = draw(50, 7, |f, a| widgets::render_sparklines(f, a, &state));
    let text = t.backend().to_string();
    assert!(text.contains("scale 0–2 ┈ target 0.5"), "{text}");
    assert!(text.contains('┈'));
}

#[test]
fn odd_durations_do_not_panic_the_gauge() {
    let mut state = ViewState::new(sample_run_snapshot());
    for (elapsed, duration) in [(5.0, 0.0), (f64::NAN, 30.0), (50.0, 30.0), (-1.0, 30.0)] {
        state.shown.elapsed_s = elapsed;
        let t = draw(80, 5, |f, a| {
            widgets::render_header(f, a, &state, &info(Some(duration)))
        });
        assert!(t.backend().to_string().contains('%'));
    }
}

#[test]
fn tiny_terminal_does_not_panic() {
    let state = state_with_history();
    for (w, h) in [(1, 1), (10, 3), (30, 8), (0, 0)] {
        draw(w, h, |f, _| widgets::render(f, &state, &info(Some(30.0))));
    }
}

/// Runs the real terminal loop against a changing snapshot, for a person (or tmux) to
/// look at: `COPPELIA_BRIDGE_LIVE_TUI=1 cargo test --test output_tui -- --ignored --nocapture`.
/// Ends on q, or after 60 s at most.
#[tokio::test]
#[ignore = "needs a terminal; run by hand"]
async fn live_terminal_loop() {
    if std::env::var_os("COPPELIA_BRIDGE_LIVE_TUI").is_none() {
        return;
    }
    let series = sample_snapshot_series(60);
    let (tx, rx) = tokio::sync::watch::channel(series[0].clone());
    let (actions_tx, mut actions) = tokio::sync::mpsc::channel(16);
    let feeder = tokio::spawn(async move {
        for s in series.into_iter().cycle().take(600) {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if tx.send(s).is_err() {
                break;
            }
        }
    });
    let ui = coppelia_bridge::output::run_tui(rx, actions_tx, info(Some(60.0)));
    if let Ok(result) = tokio::time::timeout(std::time::Duration::from_secs(60), ui).await {
        result.unwrap();
    }
    feeder.abort();
    let mut seen = Vec::new();
    while let Ok(a) = actions.try_recv() {
        seen.push(a);
    }
    eprintln!("actions: {seen:?}");
    assert!(seen.is_empty() || seen.last() == Some(&coppelia_bridge::output::UiAction::Quit));
}
