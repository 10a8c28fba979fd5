"""URLs of the example: /otp, /campaign, /jobs/<id>."""

from django.urls import path

from examples.django_app.smsdemo import views

urlpatterns = [
    path("otp", views.otp),
    path("campaign", views.campaign),
    path("jobs/<str:job_id>", views.job),
]
