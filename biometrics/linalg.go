package biometrics

import "math"

// symEigen diagonalizes the symmetric n×n matrix a (row-major, destroyed)
// with cyclic Jacobi rotations: slow for large n but exact, dependency-free
// and ample for the few dozen features here. It returns the eigenvalues and
// the eigenvectors as the columns of v.
func symEigen(a []float64, n int) (vals []float64, v []float64) {
	v = make([]float64, n*n)
	for i := range n {
		v[i*n+i] = 1
	}
	for sweep := 0; sweep < 100; sweep++ {
		var off float64
		for i := range n {
			for j := i + 1; j < n; j++ {
				off += a[i*n+j] * a[i*n+j]
			}
		}
		if off < 1e-22 {
			break
		}
		for p := 0; p < n; p++ {
			for q := p + 1; q < n; q++ {
				apq := a[p*n+q]
				if math.Abs(apq) < 1e-300 {
					continue
				}
				theta := (a[q*n+q] - a[p*n+p]) / (2 * apq)
				t := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(t*t+1)
				s := t * c
				for k := range n {
					akp, akq := a[k*n+p], a[k*n+q]
					a[k*n+p] = c*akp - s*akq
					a[k*n+q] = s*akp + c*akq
				}
				for k := range n {
					apk, aqk := a[p*n+k], a[q*n+k]
					a[p*n+k] = c*apk - s*aqk
					a[q*n+k] = s*apk + c*aqk
				}
				for k := range n {
					vkp, vkq := v[k*n+p], v[k*n+q]
					v[k*n+p] = c*vkp - s*vkq
					v[k*n+q] = s*vkp + c*vkq
				}
			}
		}
	}
	vals = make([]float64, n)
	for i := range n {
		vals[i] = a[i*n+i]
	}
	return vals, v
}

// inverseSqrt returns s^(-1/2) for a symmetric positive definite s.
func inverseSqrt(s []float64, n int) []float64 {
	a := append([]float64(nil), s...)
	vals, v := symEigen(a, n)
	out := make([]float64, n*n)
	for k := range n {
		f := 1 / math.Sqrt(math.Max(vals[k], 1e-12))
		for i := range n {
			vik := v[i*n+k] * f
			for j := range n {
				out[i*n+j] += vik * v[j*n+k]
			}
		}
	}
	return out
}
