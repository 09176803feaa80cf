"""Hidden states: PCA trajectories in a fixed basis, unit x time heatmaps, text coloured by a unit."""

import hashlib

import streamlit as st

from pages import _ui as ui
from rnnviz import analysis, figures
from rnnviz.tasks import MAX_TEXT_BYTES, MAX_VOCAB, load_text_bytes, make_task
from rnnviz.training import sample_text

ui.setup()
st.title("Hidden-state trajectories")
ui.intro(
    "Each sequence traces a path through hidden-state space as the RNN reads it. We project h_t onto its first "
    "principal components, with the basis fitted once over **all stored snapshots**, so when you replay "
    "training the motion you see is the model changing, not the axes."
)


def _use_text(text: str | None) -> None:
    st.session_state.lm_text = text
    st.session_state.running = False


if ui.controls().task == "char_lm":
    with st.expander("Train the character model on your own text", expanded=False):
        ui.explain(f"UTF-8 text, at most {MAX_TEXT_BYTES:,} bytes and {MAX_VOCAB} distinct characters. It stays in "
                   "this browser session's memory only. Now training on: "
                   + ("**your text**" if st.session_state.get("lm_text") else "**the bundled Shakespeare**"))
        # any file type, so that a binary file reaches the checks below, which say what is wrong with it
        up = st.file_uploader("A text file", key="lm_file")
        problem = None
        if up is not None:  # checked once per content and sequence length, as soon as it is uploaded
            data, seq_len = up.getvalue(), ui.controls().seq_len
            key = (hashlib.sha256(data).hexdigest(), seq_len)
            if st.session_state.get("lm_checked", (None,))[0] != key:
                try:
                    make_task("char_lm", seq_len, text=load_text_bytes(data))  # validates length and vocabulary
                    st.session_state.lm_checked = (key, None)
                except ValueError as exc:
                    st.session_state.lm_checked = (key, f"{up.name} ({len(data):,} bytes): {exc}")
            problem = st.session_state.lm_checked[1]
            if problem:
                st.error(f"Not usable: {problem}.")
        pasted = st.text_area("…or paste text", key="lm_paste", max_chars=MAX_TEXT_BYTES, height=100)
        u1, u2 = st.columns(2)
        if u1.button("Use this text", key="lm_use", disabled=(up is None and not pasted) or problem is not None):
            try:
                text = load_text_bytes(up.getvalue()) if up is not None else pasted
                make_task("char_lm", ui.controls().seq_len, text=text)  # validates length and vocabulary
                _use_text(text)
                st.success(f"Training on your text: {len(text):,} characters (new models).")
            except ValueError as exc:
                st.error(f"Not used — {exc}. The previous text and model are kept.")
        u2.button("Back to the bundled text", key="lm_bundled", on_click=_use_text, args=(None,),
                  disabled=not st.session_state.get("lm_text"))


def render(rs):
    c1, c2, c3, c4 = st.columns(4)
    label = c1.selectbox("Run", list(rs), key="hs_run")
    t = rs[label]
    snap = ui.current_snapshot(t)
    if snap is None:
        return
    L, D, B, T, H = snap.hidden.shape
    layer = c2.number_input("Layer", 0, L - 1, L - 1, key="hs_layer")
    dims = c3.radio("View", [2, 3], horizontal=True, key="hs_dims", format_func=lambda d: f"{d}-D")
    color = c4.radio("Colour by", ["t", "label"], horizontal=True, key="hs_color",
                     format_func={"t": "time", "label": "label"}.get)
    basis = analysis.pca_basis(t.snapshots, layer=layer, direction=0)
    labels = analysis.probe_labels(t)
    pf = analysis.pca_frame(snap, basis, layer=layer, direction=0, labels=labels)
    st.markdown(f"#### PCA of h_t (snapshot at step {snap.step}, layer {layer})")
    ui.chart(figures.pca_trajectories(pf, dims=dims, color=color), key="hs_pca")

    example = st.number_input("Sequence of the probe batch", 0, B - 1, 0, key="hs_example")
    def units():  # h_t of one sequence: unit, t, value
        return analysis.unit_frame(snap, layer=layer, direction=0, example=example)

    st.markdown("#### Units × time")
    ui.explain("h_t of every unit for one sequence: rows are units, columns time steps.")
    ui.chart(lambda: figures.unit_heatmap(units()), key="hs_units", every=ui.LIVE_EVERY, deps=(label, layer, example))

    if t.task.name in ("char_lm", "hello"):
        unit = st.slider("Unit to colour the text by", 0, H - 1, 0, key="hs_unit")
        chars = list(t.task.decode(t.probe.x[example]))
        uf = units()
        vals = uf[uf.unit == unit].sort_values("t").value.tolist()
        st.markdown("#### The text, coloured by the unit's activation (red −1 … blue +1)")
        st.html(figures.text_activation_html(chars, vals))
    ui.downloads({"pca": pf, "units": units}, key="hs")


ui.live(render)


if ui.controls().task in ("char_lm", "hello") and ui.budget_guard(ui.controls()):
    st.divider()
    st.markdown("#### Sample from the character model (one-to-many)")
    ui.explain("The model reads the prefix, then feeds each sampled character back in. Low temperature: "
               "safe and repetitive; high: adventurous and misspelt.")
    rs = ui.runs()
    s1, s2, s3 = st.columns([2, 1, 1])
    prefix = s1.text_input("Prefix", value="", key="hs_prefix", max_chars=200)
    temp = s2.slider("Temperature", 0.1, 2.0, 0.8, 0.1, key="hs_temp")
    greedy = s3.checkbox("Greedy (argmax)", key="hs_greedy")
    if st.button("Sample 300 characters", key="hs_sample"):
        for label, t in rs.items():
            try:
                st.markdown(f"**{label}** (step {t.steps})")
                st.code(prefix + sample_text(t, prefix, 300, temp, greedy), language=None, wrap_lines=True)
            except ValueError as exc:
                st.warning(str(exc))
