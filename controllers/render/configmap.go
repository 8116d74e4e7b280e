package render

import (
	"fmt"
	"strconv"

	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/service/config"
)

// ConfigMap is the desired ConfigMap holding c, the pacer-api config file.
func ConfigMap(ts *pacerv1.TunedService, c config.Config) (*corev1ac.ConfigMapApplyConfiguration, error) {
	data, err := config.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	return corev1ac.ConfigMap(ConfigMapName(ts), ts.Namespace).
		WithLabels(Labels(ts)).
		WithAnnotations(map[string]string{
			AnnotationConfigHash:       ConfigHash(c),
			AnnotationConfigGeneration: strconv.FormatInt(c.Generation, 10),
		}).
		WithOwnerReferences(OwnerReference(ts)).
		WithData(map[string]string{ConfigKey: string(data)}), nil
}
