package evaluation

import (
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strings"
)

// Plots are drawn with the standard library only: lines, rectangles and a
// 3×5 pixel font for the few labels a reader needs.

var (
	black = color.RGBA{0, 0, 0, 255}
	grey  = color.RGBA{200, 200, 200, 255}
	// One colour per span, and for genuine / impostor.
	palette = []color.RGBA{{31, 119, 180, 255}, {214, 39, 40, 255}, {44, 160, 44, 255}, {148, 103, 189, 255}}
)

type canvas struct {
	img                    *image.RGBA
	left, top, w, h        int // plot area
	xmin, xmax, ymin, ymax float64
}

func newCanvas(width, height int) *canvas {
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	return &canvas{img: img, left: 60, top: 30, w: width - 90, h: height - 80}
}

func (c *canvas) px(x, y float64) (int, int) {
	fx := (x - c.xmin) / (c.xmax - c.xmin)
	fy := (y - c.ymin) / (c.ymax - c.ymin)
	return c.left + int(math.Round(fx*float64(c.w))), c.top + c.h - int(math.Round(fy*float64(c.h)))
}

func (c *canvas) set(x, y int, col color.RGBA) {
	if image.Pt(x, y).In(c.img.Rect) {
		c.img.SetRGBA(x, y, col)
	}
}

// line draws from (x0,y0) to (x1,y1) in pixels, thick pixels wide.
func (c *canvas) line(x0, y0, x1, y1 int, col color.RGBA, thick int) {
	dx, dy := math.Abs(float64(x1-x0)), math.Abs(float64(y1-y0))
	n := int(math.Max(dx, dy)) + 1
	for i := 0; i <= n; i++ {
		t := float64(i) / float64(n)
		x := int(math.Round(float64(x0) + t*float64(x1-x0)))
		y := int(math.Round(float64(y0) + t*float64(y1-y0)))
		for a := 0; a < thick; a++ {
			for b := 0; b < thick; b++ {
				c.set(x+a-thick/2, y+b-thick/2, col)
			}
		}
	}
}

func (c *canvas) rect(x0, y0, x1, y1 int, col color.RGBA) {
	for y := min(y0, y1); y <= max(y0, y1); y++ {
		for x := min(x0, x1); x <= max(x0, x1); x++ {
			c.set(x, y, col)
		}
	}
}

// axes draws the frame, a grid at the given ticks and their labels.
func (c *canvas) axes(xticks, yticks []float64, xfmt, yfmt func(float64) string, xlabel, ylabel, title string) {
	for _, t := range xticks {
		x, _ := c.px(t, c.ymin)
		c.line(x, c.top, x, c.top+c.h, grey, 1)
		c.text(x-len(xfmt(t))*2, c.top+c.h+8, xfmt(t), black, 1)
	}
	for _, t := range yticks {
		_, y := c.px(c.xmin, t)
		c.line(c.left, y, c.left+c.w, y, grey, 1)
		s := yfmt(t)
		c.text(c.left-8-len(s)*4, y-2, s, black, 1)
	}
	c.line(c.left, c.top, c.left, c.top+c.h, black, 1)
	c.line(c.left, c.top+c.h, c.left+c.w, c.top+c.h, black, 1)
	c.text(c.left+c.w/2-len(xlabel)*4, c.top+c.h+24, xlabel, black, 2)
	c.text(6, c.top-18, ylabel, black, 2)
	c.text(c.left+c.w/2-len(title)*4, 6, title, black, 2)
}

func (c *canvas) legend(items []string) {
	for i, it := range items {
		y := c.top + 10 + i*16
		x := c.left + c.w - 150
		c.rect(x, y, x+14, y+8, palette[i%len(palette)])
		c.text(x+20, y, it, black, 2)
	}
}

func (c *canvas) write(w io.Writer) error { return png.Encode(w, c.img) }

// glyphs is a 3×5 pixel font: five rows of three bits per character.
var glyphs = map[rune][5]uint8{
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 7, 1, 7},
	'4': {5, 5, 7, 1, 1}, '5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 1, 2, 2},
	'8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7}, '.': {0, 0, 0, 0, 2}, '%': {5, 1, 2, 4, 5},
	'-': {0, 0, 7, 0, 0}, '=': {0, 7, 0, 7, 0}, '(': {1, 2, 2, 2, 1}, ')': {4, 2, 2, 2, 4},
	'/': {1, 1, 2, 4, 4}, ':': {0, 2, 0, 2, 0}, ',': {0, 0, 0, 2, 4},
	'A': {2, 5, 7, 5, 5}, 'B': {6, 5, 6, 5, 6}, 'C': {7, 4, 4, 4, 7}, 'D': {6, 5, 5, 5, 6},
	'E': {7, 4, 6, 4, 7}, 'F': {7, 4, 6, 4, 4}, 'G': {7, 4, 5, 5, 7}, 'H': {5, 5, 7, 5, 5},
	'I': {7, 2, 2, 2, 7}, 'J': {1, 1, 1, 5, 7}, 'K': {5, 5, 6, 5, 5}, 'L': {4, 4, 4, 4, 7},
	'M': {5, 7, 7, 5, 5}, 'N': {6, 5, 5, 5, 5}, 'O': {7, 5, 5, 5, 7}, 'P': {7, 5, 7, 4, 4},
	'Q': {7, 5, 5, 7, 1}, 'R': {7, 5, 6, 5, 5}, 'S': {7, 4, 7, 1, 7}, 'T': {7, 2, 2, 2, 2},
	'U': {5, 5, 5, 5, 7}, 'V': {5, 5, 5, 5, 2}, 'W': {5, 5, 7, 7, 5}, 'X': {5, 5, 2, 5, 5},
	'Y': {5, 5, 2, 2, 2}, 'Z': {7, 1, 2, 4, 7},
}

func (c *canvas) text(x, y int, s string, col color.RGBA, scale int) {
	for _, r := range strings.ToUpper(s) {
		g, ok := glyphs[r]
		if ok {
			for row := range 5 {
				for bit := range 3 {
					if g[row]&(4>>bit) != 0 {
						c.rect(x+bit*scale, y+row*scale, x+bit*scale+scale-1, y+row*scale+scale-1, col)
					}
				}
			}
		}
		x += 4 * scale
	}
}

func pct(v float64) string { return trimFloat(100*v) + "%" }

func trimFloat(v float64) string {
	s := strings.TrimRight(strings.TrimRight(formatFloat(v, 1), "0"), ".")
	if s == "" || s == "-" {
		return "0"
	}
	return s
}

func formatFloat(v float64, prec int) string {
	p := math.Pow(10, float64(prec))
	v = math.Round(v*p) / p
	neg := v < 0
	v = math.Abs(v)
	whole := int64(v)
	frac := int64(math.Round((v - float64(whole)) * p))
	s := itoa(whole) + "." + pad(itoa(frac), prec)
	if neg {
		s = "-" + s
	}
	return s
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	return string(b)
}

func pad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s
}

// probit maps an error rate to the normal deviate, the usual DET axis.
func probit(p float64) float64 {
	p = math.Min(math.Max(p, 1e-4), 1-1e-4)
	return math.Sqrt2 * math.Erfinv(2*p-1)
}

// WriteDET draws the detection error trade-off curve of each span
// (false rejects against false accepts, normal-deviate axes) as a PNG.
func WriteDET(w io.Writer, spans []SpanResult) error {
	c := newCanvas(640, 560)
	ticks := []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.4}
	var pt []float64
	for _, t := range ticks {
		pt = append(pt, probit(t))
	}
	c.xmin, c.xmax, c.ymin, c.ymax = probit(0.005), probit(0.5), probit(0.005), probit(0.5)
	c.axes(pt, pt, func(v float64) string { return pct(normCDF(v)) }, func(v float64) string { return pct(normCDF(v)) },
		"false accept rate", "false reject rate", "DET")
	var names []string
	for i, s := range spans {
		pts := DET(s.Genuine, s.Impostor)
		col := palette[i%len(palette)]
		var px, py int
		first := true
		for _, p := range pts {
			x, y := c.px(clampF(probit(p.FAR), c.xmin, c.xmax), clampF(probit(p.FRR), c.ymin, c.ymax))
			if !first {
				c.line(px, py, x, y, col, 2)
			}
			px, py, first = x, y, false
		}
		names = append(names, s.Name+" EER "+pct(s.EER))
	}
	// The diagonal is where EER is read.
	x0, y0 := c.px(c.xmin, c.ymin)
	x1, y1 := c.px(c.xmax, c.ymax)
	c.line(x0, y0, x1, y1, grey, 1)
	c.legend(names)
	return c.write(w)
}

// WriteHistogram draws the genuine and impostor score distributions of one
// span as a PNG.
func WriteHistogram(w io.Writer, s SpanResult) error {
	c := newCanvas(640, 420)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range append(append([]float64(nil), s.Genuine...), s.Impostor...) {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if !(hi > lo) {
		lo, hi = lo-1, lo+1
	}
	const bins = 30
	width := (hi - lo) / bins
	hist := func(vs []float64) []float64 {
		h := make([]float64, bins)
		for _, v := range vs {
			h[min(bins-1, int((v-lo)/width))] += 1 / float64(len(vs))
		}
		return h
	}
	hg, hImp := hist(s.Genuine), hist(s.Impostor)
	top := 0.0
	for i := range bins {
		top = math.Max(top, math.Max(hg[i], hImp[i]))
	}
	c.xmin, c.xmax, c.ymin, c.ymax = lo, hi, 0, top*1.1
	var xt []float64
	for i := 0; i <= 5; i++ {
		xt = append(xt, lo+float64(i)*(hi-lo)/5)
	}
	c.axes(xt, []float64{0, top / 2, top}, func(v float64) string { return formatFloat(v, 1) }, pct,
		"score", "share of trials", "SCORES "+s.Name)
	for i := range bins {
		for k, h := range [][]float64{hImp, hg} {
			if h[i] == 0 {
				continue
			}
			x0, y0 := c.px(lo+float64(i)*width, 0)
			x1, y1 := c.px(lo+float64(i+1)*width, h[i])
			col := palette[1-k]
			if k == 1 {
				// Genuine drawn as an outline over the impostor bars.
				c.line(x0, y1, x1, y1, col, 2)
				c.line(x0, y0, x0, y1, col, 2)
				c.line(x1, y0, x1, y1, col, 2)
				continue
			}
			c.rect(x0+1, y1, x1-1, y0, col)
		}
	}
	c.legend([]string{"genuine (" + itoa(int64(len(s.Genuine))) + ")", "impostor (" + itoa(int64(len(s.Impostor))) + ")"})
	return c.write(w)
}

func normCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

func clampF(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }
