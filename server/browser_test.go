package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"golang.org/x/image/draw"

	"latentedit/dataset"
	_ "latentedit/dataset/faces" // the procedural faces the upload is drawn from
	"latentedit/internal/atomicfile"
	"latentedit/internal/pngtest"
)

// chromiumPath finds Debian's chromium. There is no skip: scripts/test.sh
// installs it, so a machine without it fails here, saying how to fix it.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: the browser test needs it (apt-get install chromium; scripts/test.sh installs it)")
	return ""
}

// artifactsDir is where the browser test leaves its screenshots for people
// to look at: $LATENTEDIT_ARTIFACTS, or a fixed folder under the system
// temp dir (printed by the test), so they outlive the test.
func artifactsDir(t *testing.T) string {
	dir := os.Getenv("LATENTEDIT_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "latentedit-browser-test")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// page is one headless chromium tab and the helpers the browser tests
// drive it with; every helper fails the test with what it was waiting for.
type page struct {
	t     *testing.T
	ctx   context.Context
	shots string
}

// newPage starts chromium (closed at the end of the test).
func newPage(t *testing.T) *page {
	chrome := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox, // CI runs as root, where chromium's sandbox refuses to start
		chromedp.WindowSize(1400, 1000),
		chromedp.Flag("hide-scrollbars", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	// Start the browser without a deadline (a deadline on the first run
	// would bound the browser's whole life), then bound the test.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", chrome, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 4*time.Minute)
	t.Cleanup(cancel)
	return &page{t: t, ctx: ctx, shots: artifactsDir(t)}
}

func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

func (p *page) str(js string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		p.t.Fatalf("%s: %v", js, err)
	}
	return v
}

// waitFor polls a JavaScript predicate (the page updates asynchronously).
func (p *page) waitFor(what, predicate string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second))); err != nil {
		p.t.Fatalf("waiting for %s (%s): %v; page error: %q", what, predicate, err, p.str(`document.getElementById("error").textContent`))
	}
}

func (p *page) shot(name string) {
	p.t.Helper()
	buf, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100)) // quality 100 is PNG
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(p.shots, name), buf, atomicfile.DefaultPerm); err != nil {
		p.t.Fatal(err)
	}
}

// drag moves a range input's thumb with the mouse, from its centre to frac
// of its width, in small steps as a hand would.
func (p *page) drag(sel string, frac float64) {
	p.t.Helper()
	var box struct{ X, Y, W, H float64 }
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.scrollIntoView({block: "center"});
		const r = e.getBoundingClientRect(); return {X: r.x, Y: r.y, W: r.width, H: r.height}; })()`, sel)
	raw, err := chromedp.Run(p.ctx, chromedp.Evaluate[json.RawMessage](js))
	if err != nil {
		p.t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &box); err != nil || box.W == 0 {
		p.t.Fatalf("%s: no box (%v) in %s", sel, err, raw)
	}
	y := box.Y + box.H/2
	p.do("drag "+sel, chromedp.DragAndDropXY(box.X+box.W/2, y, box.X+box.W*frac, y, 12))
}

// TestBrowserEditor drives the real page in headless chromium against the
// real server on loopback, as a person would: pick a character, drag a
// slider, see the picture change, fuse two characters, upload a picture and
// download the result and its recipe, which must replay to the same pixels.
func TestBrowserEditor(t *testing.T) {
	url := tokenServer(t) // the whole flow through a server that wants an access token
	p := newPage(t)
	shots := p.shots
	downloads := t.TempDir()
	do, str, waitFor, shot, drag := p.do, p.str, p.waitFor, p.shot, p.drag

	do("set downloads", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})
		return err
	}))

	// 1. The gallery: twelve characters, the first one picked.
	do("load page", chromedp.Navigate(url+"/#token="+testToken))
	waitFor("gallery", `document.querySelectorAll("#gallery .card img").length === 12`)
	// The token left the address bar, stays for the tab, and is what lets
	// the page in: the same request without it is refused.
	if h := str(`location.hash`); h != "" {
		t.Errorf("the token is still in the address bar: %q", h)
	}
	waitFor("a request without the token is refused", `(window.__noTok ||= fetch("/api/info").then(r => window.__noTokStatus = r.status), window.__noTokStatus === 401)`)
	waitFor("first character", `document.getElementById("current").src.startsWith("data:image/png")`)
	waitFor("sliders", `document.querySelectorAll("#sliders input").length >= 8`)
	if s := str(`document.getElementById("model-line").textContent`); !strings.Contains(s, "faces-gan") {
		t.Errorf("model line %q", s)
	}
	shot("editor-gallery.png")

	// 2. Editing: pick the third character, drag two sliders; the picture
	// changes and the edit list grows in the order the sliders were moved.
	do("pick", chromedp.Click(chromedp.CSS("#gallery .card:nth-child(3) img")))
	waitFor("picked", `document.getElementById("current-caption").textContent.includes("unedited")`)
	before := str(`document.getElementById("current").src`)
	first := str(`document.querySelector("#sliders input").dataset.direction`)
	drag("#slider-0", 0.95)
	waitFor("edited picture", fmt.Sprintf(`document.getElementById("current").src !== %q && document.querySelectorAll("#edits li:not(.empty)").length === 1`, before))
	if v := str(`document.getElementById("slider-0").value`); v == "0" {
		t.Errorf("slider value %s after the drag", v)
	}
	second := str(`document.getElementById("slider-4").dataset.direction`)
	drag("#slider-4", 0.1)
	waitFor("second edit", `document.querySelectorAll("#edits li:not(.empty)").length === 2`)
	if got := str(`[...document.querySelectorAll("#edits li b")].map(b => b.textContent).join(",")`); got != first+","+second {
		t.Errorf("edit list %q, want %q", got, first+","+second)
	}
	do("other order", chromedp.Click(chromedp.ID("other-order")))
	waitFor("other order", `!document.getElementById("other-figure").hidden && document.getElementById("other-caption").textContent.includes("differs by")`)
	shot("editor-editing.png")
	// Reordering changes what the edit list says comes first.
	do("move up", chromedp.Click(chromedp.CSS("#edits li:nth-child(2) button")))
	waitFor("reordered", fmt.Sprintf(`document.querySelector("#edits li b").textContent === %q`, second))
	// × removes an edit and puts its slider back to 0.
	do("remove", chromedp.Click(chromedp.CSS("#edits li:nth-child(1) button:nth-of-type(3)")))
	waitFor("removed", fmt.Sprintf(`document.querySelectorAll("#edits li:not(.empty)").length === 1 && document.getElementById("slider-4").value === "0" && document.querySelector("#edits li b").textContent === %q`, first))

	// The warped editor's curved paths do not commute: the toggle must show
	// a difference (interfacegan's straight lines showed 0.0 above).
	do("method warped", chromedp.SetValue(chromedp.ID("method"), "warped"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("method").dispatchEvent(new Event("change"))`))
	waitFor("warped sliders", `document.querySelectorAll("#edits li:not(.empty)").length === 0 && document.getElementById("method-note").textContent.includes("curved")`)
	drag("#slider-0", 0.95)
	drag("#slider-2", 0.05)
	waitFor("warped, other order", `document.querySelectorAll("#edits li:not(.empty)").length === 2 && /differs by [0-9.]+/.test(document.getElementById("other-caption").textContent)`)
	waitFor("warped orders differ", `!document.getElementById("other-caption").textContent.includes("differs by 0.0 ")`)

	// 3. Download the edited character and its recipe: the recipe replays
	// (here, and in cmd's test through `latentedit edit --recipe`) to the
	// very pixels of the downloaded PNG.
	waitFor("downloads ready", `!document.getElementById("download-recipe").classList.contains("disabled")`)
	waitFor("page settled", `document.body.dataset.busy === "0"`) // PNG and recipe of one state
	shown := str(`document.getElementById("current").src`)
	do("download", chromedp.Click(chromedp.ID("download-png")), chromedp.Click(chromedp.ID("download-recipe")))
	pngPath, recipePath := filepath.Join(downloads, "character.png"), filepath.Join(downloads, "character-recipe.json")
	waitFile(t, pngPath)
	waitFile(t, recipePath)
	got := pngtest.Read(t, pngPath)
	if d := samePixels(got, decodePNG(t, shown)); d != "" {
		t.Errorf("downloaded PNG differs from the picture on the page: %s", d)
	}
	recipe, err := os.ReadFile(recipePath)
	if err != nil {
		t.Fatal(err)
	}
	var rec Recipe
	if err := json.Unmarshal(recipe, &rec); err != nil || len(rec.Steps) != 2 || rec.Editor == "" {
		t.Fatalf("recipe %s: %v", recipe, err)
	}
	_, replayed, err := Replay(sharedWS, recipe)
	if err != nil {
		t.Fatal(err)
	}
	if d := samePixels(got, replayed); d != "" {
		t.Errorf("recipe replays to other pixels than the download: %s", d)
	}
	if os.Getenv("LATENTEDIT_RECIPE_OUT") != "" { // for cmd's replay test and for people
		_ = atomicfile.WriteFile(os.Getenv("LATENTEDIT_RECIPE_OUT"), recipe, atomicfile.DefaultPerm)
	}

	// 4. Fusion: characters 1 and 10 in the slots, the mix slider dragged,
	// then the mode switched to V.
	do("slots", chromedp.Click(chromedp.CSS("#gallery .card:nth-child(1) .slot-a")), chromedp.Click(chromedp.CSS("#gallery .card:nth-child(10) .slot-b")))
	waitFor("fusion", `document.getElementById("fused").src.startsWith("data:image/png")`)
	fused := str(`document.getElementById("fused").src`)
	drag("#mix", 0.8)
	waitFor("fusion moves with the mix", fmt.Sprintf(`document.getElementById("fused").src !== %q`, fused))
	fused = str(`document.getElementById("fused").src`)
	do("mode V", chromedp.Click(chromedp.CSS(`#modes input[value="v"]`)))
	waitFor("fusion in V", fmt.Sprintf(`document.getElementById("fused").src !== %q`, fused))
	do("edit the fusion", chromedp.Click(chromedp.ID("edit-fused")))
	waitFor("fusion is edited", `document.getElementById("current-caption").textContent.startsWith("fusion of seed 1 and seed 10")`)
	shot("editor-fusion.png")

	// 5. Upload: a character drawn by the procedural renderer (not by the
	// GAN), enlarged to 96×96 as a user's picture would be; the page shows
	// progress and ends on the fitted character, ready to edit.
	upload := filepath.Join(t.TempDir(), "my-character.png")
	writeUpload(t, upload)
	do("upload", chromedp.SetUploadFiles(chromedp.ID("upload"), []string{upload}))
	waitFor("progress", `document.getElementById("upload-status").textContent.includes("step")`)
	waitFor("inverted", `document.getElementById("upload-status").textContent.startsWith("done")`)
	waitFor("upload is edited", `document.getElementById("current-caption").textContent.startsWith("upload my-character.png")`)
	if !strings.HasPrefix(str(`document.getElementById("upload-target").src`), "data:image/png") {
		t.Error("the fitted upload is not shown")
	}
	// The upload edits like any character.
	do("method interfacegan", chromedp.SetValue(chromedp.ID("method"), "interfacegan"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("method").dispatchEvent(new Event("change"))`))
	uploaded := str(`document.getElementById("current").src`)
	drag("#slider-0", 0.9)
	waitFor("edited upload", fmt.Sprintf(`document.getElementById("current").src !== %q && document.getElementById("current-caption").textContent.includes("1 edit")`, uploaded))
	shot("editor-upload.png")
	// A new batch draws other seeds.
	do("new batch", chromedp.Click(chromedp.ID("new-batch")))
	waitFor("new batch", `document.querySelectorAll("#gallery .card").length === 12 && document.querySelector("#gallery .seed").textContent !== "seed 1" && document.getElementById("seed").value !== "1"`)
	if e := str(`document.getElementById("error").hidden ? "" : document.getElementById("error").textContent`); e != "" {
		t.Errorf("page shows an error: %s", e)
	}
	t.Logf("screenshots in %s", shots)
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for range 200 {
		if st, err := os.Stat(path); err == nil && st.Size() > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	t.Fatalf("no download %s (folder has %v)", path, entries)
}

// writeUpload renders one procedural face (32×32) and enlarges it to 96×96.
func writeUpload(t *testing.T, path string) {
	t.Helper()
	ds, err := dataset.Open("faces", dataset.Options{N: 1, Seed: 2024, Size: 32})
	if err != nil {
		t.Fatal(err)
	}
	face, _, err := ds.Sample(0)
	if err != nil {
		t.Fatal(err)
	}
	big := image.NewRGBA(image.Rect(0, 0, 96, 96))
	draw.NearestNeighbor.Scale(big, big.Bounds(), face, face.Bounds(), draw.Src, nil)
	var b bytes.Buffer
	if err := png.Encode(&b, big); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.WriteFile(path, b.Bytes(), atomicfile.DefaultPerm); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserVAE serves the faces VAE, which ships no editors: the page says
// how to make one, and an upload goes through the encoder in one pass.
func TestBrowserVAE(t *testing.T) {
	s := vaeServer(t)
	ctx, stop := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", s, func(a string) { addr <- a }) }()
	t.Cleanup(func() { stop(); <-done })
	url := "http://" + <-addr

	p := newPage(t)
	p.do("load page", chromedp.Navigate(url))
	p.waitFor("gallery", `document.querySelectorAll("#gallery .card img").length === 12`)
	p.waitFor("character shown", `document.getElementById("current").src.startsWith("data:image/png")`)
	if n := p.str(`String(document.querySelectorAll("#sliders input").length)`); n != "0" {
		t.Errorf("%s sliders for a model without editors", n)
	}
	if note := p.str(`document.getElementById("method-note").textContent`); !strings.Contains(note, "latentedit discover") {
		t.Errorf("method note %q does not say how to make an editor", note)
	}
	upload := filepath.Join(t.TempDir(), "face.png")
	writeUpload(t, upload)
	p.do("upload", chromedp.SetUploadFiles(chromedp.ID("upload"), []string{upload}))
	p.waitFor("encoded", `document.getElementById("upload-status").textContent.startsWith("done (encoder")`)
	p.waitFor("upload shown", `document.getElementById("current-caption").textContent.startsWith("upload face.png")`)
	if e := p.str(`document.getElementById("error").hidden ? "" : document.getElementById("error").textContent`); e != "" {
		t.Errorf("page shows an error: %s", e)
	}
}
