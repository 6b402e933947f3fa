package rating

import (
	"fmt"

	"github.com/govalues/decimal"
)

// Resource types priced by size.
const (
	VolumeType = "os.cinder.volume"
	ImageType  = "os.glance.image"
)

var one = decimal.MustNew(1, 0)

func init() {
	Register(VolumeType, newVolume)
	Register(ImageType, newImage)
}

// VolumeSpec prices Cinder volumes per GB-hour from the record attribute "size" (GB), optionally
// per volume type (attribute "volume_type").
//
//	price_per_gb_hour: "0.00015"
//	volume_types: {ssd: "0.00030"}
type VolumeSpec struct {
	PricePerGBHour Price            `yaml:"price_per_gb_hour"`
	VolumeTypes    map[string]Price `yaml:"volume_types"`
}

type volume struct{ spec VolumeSpec }

func newVolume(s Spec) (Rule, error) {
	var spec VolumeSpec
	if err := s.Decode(&spec); err != nil {
		return nil, err
	}
	return &volume{spec: spec}, nil
}

func (r *volume) Price(u Usage) (Charge, error) {
	size, err := attrDecimal(u, "size")
	if err != nil {
		return Charge{}, err
	}
	p := r.spec.PricePerGBHour
	vt := u.Attributes["volume_type"]
	if tp, ok := r.spec.VolumeTypes[vt]; ok {
		p = tp
	}
	desc := fmt.Sprintf("Volume %s GB", size)
	if vt != "" {
		desc += " " + vt
	}
	return perHour(p.Decimal, size, u.Range.Seconds(), "GB-hour", desc)
}

// ImageSpec prices Glance images per GiB-hour from the record attribute "size" in bytes.
//
//	price_per_gb_hour: "0.00010"
type ImageSpec struct {
	PricePerGBHour Price `yaml:"price_per_gb_hour"`
}

type image struct{ spec ImageSpec }

func newImage(s Spec) (Rule, error) {
	var spec ImageSpec
	if err := s.Decode(&spec); err != nil {
		return nil, err
	}
	return &image{spec: spec}, nil
}

func (r *image) Price(u Usage) (Charge, error) {
	bytes, err := attrDecimal(u, "size")
	if err != nil {
		return Charge{}, err
	}
	gib, err := bytes.Quo(bytesPerGiB)
	if err != nil {
		return Charge{}, fmt.Errorf("%s %s: size: %w", u.ResourceType, u.ResourceID, err)
	}
	return perUnitHour(r.spec.PricePerGBHour.Decimal, bytes, secondsPerHourGiB, u.Range.Seconds(), "GiB-hour", fmt.Sprintf("Image %s GiB", gib.Round(2).Trim(0)))
}
